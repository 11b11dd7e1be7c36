"""The training set deduplicates, weights, filters and splits each user by time."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from recsys_assets.domain.events import EVENTS_SCHEMA
from recsys_assets.domain.layout import TrainingSetFiles
from recsys_assets.domain.params import SplitParams
from recsys_assets.domain.records import TrainingSetSummary, Window
from recsys_assets.domain.splitting import TrainingSet, build_training_set, content_hash, cut_too_long

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PARAMS = SplitParams(
    event_type_weights={"view": 1.0, "apply": 5.0},
    default_event_weight=1.0,
    min_user_items=3,
    min_item_users=1,
    holdout_fraction=0.25,
    validation_fraction=0.34,
)


def events(rows: list[tuple[str, str, str, float, int]]) -> pa.Table:
    """Rows of (user, item, event_type, weight, hour offset)."""
    return pa.table(
        {
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "event_type": [r[2] for r in rows],
            "weight": [r[3] for r in rows],
            "event_ts": [T0 + timedelta(hours=r[4]) for r in rows],
        },
        schema=EVENTS_SCHEMA,
    )


def cell(data: TrainingSet, matrix: str, user: str, item: str) -> float:
    u = data.user_ids.to_pylist().index(user)
    i = data.item_ids.to_pylist().index(item)
    return float(getattr(data, matrix)[u, i])


def test_dedup_weighting_filters_and_time_split():
    rows = [("alice", f"j{i}", "view", 1.0, i) for i in range(8)]  # j7 is alice's most recent item
    rows += [("alice", "j0", "apply", 1.0, 20), ("alice", "j0", "apply", 1.0, 20)]  # exact duplicate apply
    rows += [("bob", "j1", "view", 1.0, 1), ("bob", "j2", "view", 2.0, 2)]  # only 2 items: filtered out
    # carol trains on j6 and j7 early, so alice's held-out j6/j7 are in the catalogue
    rows += [("carol", "j6", "view", 1.0, 0), ("carol", "j7", "view", 1.0, 1), ("carol", "jx", "view", 1.0, 2)]
    data = build_training_set(events(rows), PARAMS)

    assert data.user_ids.to_pylist() == ["alice", "carol"]
    # j0: one view (1.0) + one apply (5.0) after removing the duplicate row
    assert cell(data, "train", "alice", "j0") == 6.0
    # 8 items: floor(8 * 0.25) = 2 most recent held out (j7, j6); the holdout is binary
    holdout_items = [data.item_ids[i].as_py() for i in data.holdout.indices]
    assert sorted(holdout_items) == ["j6", "j7"] and set(data.holdout.data) == {1.0}
    # validation: floor(6 * 0.34) = 2 most recent of the rest (j5, j4); fit keeps j0..j3
    alice = data.user_ids.to_pylist().index("alice")
    assert sorted(data.item_ids[i].as_py() for i in data.validation[alice].indices) == ["j4", "j5"]
    assert data.fit[alice].nnz == 4 and data.train[alice].nnz == 6
    assert data.counts.events == 15 and data.counts.events_deduplicated == 14
    # carol's own held-out item jx occurs nowhere in training, so only alice is evaluated
    assert data.counts.holdout_users == 1 and data.counts.holdout_pairs_unknown_item == 1


def test_holdout_items_unseen_in_training_are_dropped_and_counted():
    rows = [
        ("u1", "a", "view", 1.0, 1),
        ("u1", "b", "view", 1.0, 2),
        ("u1", "c", "view", 1.0, 3),
        ("u1", "d", "view", 1.0, 4),
        ("u1", "only-new", "view", 1.0, 9),
    ]
    data = build_training_set(events(rows), PARAMS)
    assert "only-new" not in data.item_ids.to_pylist()
    assert data.counts.holdout_pairs_unknown_item == 1 and data.holdout.nnz == 0


def test_files_round_trip_and_hash_is_stable(tmp_path):
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"j{rng.integers(30)}", "view", 1.0, int(h)) for u in range(40) for h in rng.integers(0, 500, 12)]
    data = build_training_set(events(rows), PARAMS)
    files = TrainingSetFiles(str(tmp_path))
    payloads = data.to_files(files)
    for uri, payload in payloads.items():
        with open(uri, "wb") as out:
            out.write(payload)
    summary = TrainingSetSummary(
        **data.counts.model_dump(), window=Window(start="a", end="b", days=1), partitions=["a"], content_hash="h"
    )
    (tmp_path / "summary.json").write_bytes(summary.to_json())
    loaded = TrainingSet.load(files)
    assert (loaded.train != data.train).nnz == 0 and (loaded.holdout != data.holdout).nnz == 0
    assert loaded.item_ids.equals(data.item_ids) and loaded.summary == summary
    # The hash depends on the contents only, not on where the files are written.
    elsewhere = build_training_set(events(rows), PARAMS).to_files(TrainingSetFiles("s3://bucket/other"))
    assert content_hash(payloads) == content_hash(elsewhere)


def test_splits_partition_each_users_items_and_sparse_items_and_users_are_dropped():
    params = SplitParams(min_user_items=2, min_item_users=2, holdout_fraction=0.5, validation_fraction=0.5)
    rows = [("u1", f"j{i}", "view", 1.0, i) for i in range(5)]  # 5 items, j4 the most recent
    rows += [("u2", "j0", "view", 1.0, 0), ("u2", "j1", "view", 1.0, 1)]  # exactly min_user_items
    rows += [("u3", "j4", "view", 1.0, 0), ("u3", "j3", "view", 1.0, 1), ("u3", "j2", "view", 1.0, 2)]
    rows += [("u4", "j0", "view", 1.0, 0), ("u4", "rare", "view", 1.0, 1)]  # "rare": 1 user < 2, so u4 keeps 1 item
    data = build_training_set(events(rows), params)
    assert data.user_ids.to_pylist() == ["u1", "u2", "u3"]
    assert "rare" not in data.item_ids.to_pylist()

    def items(matrix: str, user: str) -> list[str]:
        row = getattr(data, matrix)[data.user_ids.to_pylist().index(user)]
        return sorted(data.item_ids[int(i)].as_py() for i in row.indices)

    # u1: holdout floor(5 * 0.5) = 2 most recent (j3, j4); validation floor(3 * 0.5) = 1 (j2); fit j0, j1
    assert (items("holdout", "u1"), items("validation", "u1"), items("fit", "u1")) == (
        ["j3", "j4"],
        ["j2"],
        ["j0", "j1"],
    )
    # u2: holdout max(1, floor(2 * 0.5)) = 1 (j1); one item left is too few to validate on, so it is fit
    assert (items("holdout", "u2"), items("validation", "u2"), items("fit", "u2")) == (["j1"], [], ["j0"])
    # u3: holdout floor(3 * 0.5) = 1 (j2); validation max(1, floor(2 * 0.5)) = 1 (j3); fit j4
    assert (items("holdout", "u3"), items("validation", "u3"), items("fit", "u3")) == (["j2"], ["j3"], ["j4"])
    # train = fit + validation, and no pair is in two splits
    assert (data.train != data.fit + data.validation).nnz == 0
    assert data.train.multiply(data.holdout).nnz == 0 and data.fit.multiply(data.validation).nnz == 0
    # every held-out item also occurs in someone's training rows, so none is dropped
    assert (data.counts.users, data.counts.items, data.counts.holdout_pairs, data.counts.holdout_users) == (3, 5, 4, 3)
    assert data.counts.holdout_pairs_unknown_item == 0


def test_global_time_cut_splits_by_day_and_ages_count_from_each_cut():
    params = PARAMS.model_copy(update={"cut_days": 2, "min_user_items": 2})
    # days 0..5 of 2026-01-01; the data ends at midnight after day 5, so the cut is day 4, validation from day 2
    rows = [(user, f"j{day}", "view", 1.0, 24 * day + 1) for user in ("u1", "u2") for day in range(6)]
    rows += [("u3", "j4", "view", 1.0, 2), ("u3", "j1", "view", 1.0, 25)]  # j4 is known before the cut, j5 is not
    rows += [
        ("late", "j5", "view", 1.0, 24 * 5 + 2),
        ("late", "j4", "view", 1.0, 24 * 4 + 2),
    ]  # no history before the cut
    data = build_training_set(events(rows), params)

    def day(matrix, user):
        return sorted(data.item_ids[i].as_py() for i in matrix[data.user_ids.to_pylist().index(user)].indices)

    assert day(data.cut_holdout, "u1") == ["j4"]
    assert day(data.cut_validation, "u1") == ["j2", "j3"] and day(data.cut_fit, "u1") == ["j0", "j1"]
    assert day(data.cut_train, "u1") == ["j0", "j1", "j2", "j3"]
    # cold: j5 for u1 and u2 (nobody saw it before the cut) and both of "late"'s pairs (no history)
    assert data.counts.cut_holdout_users == 2 and data.counts.cut_holdout_pairs_cold == 4
    cut = data.protocol("global_cut")
    u1 = data.user_ids.to_pylist().index("u1")
    j0 = data.item_ids.to_pylist().index("j0")
    # j0 was first seen at 01:00 on day 0: 4 days minus an hour before the cut, 2 days minus an hour before the validation cut
    assert abs(cut.train_ages[u1, j0] - (4 - 1 / 24)) < 1e-3 and abs(cut.fit_ages[u1, j0] - (2 - 1 / 24)) < 1e-3
    per_user = data.protocol("per_user")
    assert per_user.train is data.train and abs(per_user.train_ages[u1, j0] - (6 - 1 / 24)) < 1e-3


def test_times_change_the_content_hash(tmp_path):
    rows = [(user, f"j{i}", "view", 1.0, i) for user in ("a", "b") for i in range(4)]
    files = TrainingSetFiles(str(tmp_path))
    early = build_training_set(events(rows), PARAMS).to_files(files)
    later = build_training_set(events([(u, j, t, w, h + 30) for u, j, t, w, h in rows]), PARAMS).to_files(files)
    assert content_hash(early) != content_hash(later)


def test_the_full_matrix_holds_every_pair_and_a_too_long_cut_is_named_with_its_numbers():
    # Three users, each seeing the 5 items in a rotated order every other day (days 0..8): 9 days of data.
    rows = [(f"u{u}", f"j{(i + u) % 5}", "view", 1.0, 48 * i + u) for u in range(3) for i in range(5)]
    data = build_training_set(events(rows), PARAMS.model_copy(update={"cut_days": 2}))
    assert data.full.nnz == data.counts.full_pairs == 15 > data.train.nnz
    assert data.full.nnz == data.train.nnz + data.counts.holdout_pairs
    assert cut_too_long(data.counts) is None
    assert data.full_ages().max() == pytest.approx(9.0, abs=0.01)

    short = build_training_set(events(rows), PARAMS.model_copy(update={"cut_days": 5}))
    assert short.counts.cut_fit_pairs == 0 and short.protocol("global_cut").fit_ages.nnz == 0
    assert cut_too_long(short.counts) == (
        "training_set.cut_days=5 is too long for 9 days of data: the global time cut holds out the last 5 days, "
        "validates on the 5 before them and fits on what is earlier, which needs more than 10 days; empty: fit, "
        f"validation (0 fit, 0 validation, {short.counts.cut_holdout_pairs} holdout pairs). Lower "
        "training_set.cut_days to at most 4 or widen RECSYS_TRAINING_WINDOW_DAYS"
    )
