"""The training set deduplicates, weights, filters and splits each user by time."""

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import get_args

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from recsys_assets.domain import storage
from recsys_assets.domain.events import EVENTS_SCHEMA
from recsys_assets.domain.layout import PROTOCOL_MATRICES, TrainingSetFiles
from recsys_assets.domain.params import Protocol, SplitParams
from recsys_assets.domain.records import TrainingSetSummary, Window
from recsys_assets.domain.splitting import (
    GLOBAL_CUT,
    PER_USER,
    PROTOCOLS,
    TrainingSet,
    build_training_set,
    content_hash,
    history_advice,
    rolling_folds,
    small_holdouts,
    split_problem,
)
from recsys_assets_tests.support.families import hand_split

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
    return float(getattr(data.protocols[PER_USER], matrix)[u, i])


def test_dedup_weighting_filters_and_time_split():
    rows = [("alice", f"j{i}", "view", 1.0, i) for i in range(8)]  # j7 is alice's most recent item
    rows += [("alice", "j0", "apply", 1.0, 20), ("alice", "j0", "apply", 1.0, 20)]  # exact duplicate apply
    rows += [("bob", "j1", "view", 1.0, 1), ("bob", "j2", "view", 2.0, 2)]  # only 2 items: filtered out
    # carol trains on j6 and j7 early, so alice's held-out j6/j7 are in the catalogue
    rows += [("carol", "j6", "view", 1.0, 0), ("carol", "j7", "view", 1.0, 1), ("carol", "jx", "view", 1.0, 2)]
    data = build_training_set(events(rows), PARAMS)
    split = data.protocols[PER_USER]

    assert data.user_ids.to_pylist() == ["alice", "carol"]
    # j0: one view (1.0) + one apply (5.0) after removing the duplicate row
    assert cell(data, "train", "alice", "j0") == 6.0
    # 8 items: floor(8 * 0.25) = 2 most recent held out (j7, j6); the holdout is binary
    holdout_items = [data.item_ids[i].as_py() for i in split.holdout.indices]
    assert sorted(holdout_items) == ["j6", "j7"] and set(split.holdout.data) == {1.0}
    # validation: floor(6 * 0.34) = 2 most recent of the rest (j5, j4); fit keeps j0..j3
    alice = data.user_ids.to_pylist().index("alice")
    assert sorted(data.item_ids[i].as_py() for i in split.validation[alice].indices) == ["j4", "j5"]
    assert split.fit[alice].nnz == 4 and split.train[alice].nnz == 6
    assert data.counts.events == 15 and data.counts.events_deduplicated == 14
    # carol's own held-out item jx occurs nowhere in training, so only alice is evaluated
    assert split.counts.holdout_users == 1 and split.counts.unscored_holdout_pairs == 1


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
    split = data.protocols[PER_USER]
    assert split.counts.unscored_holdout_pairs == 1 and split.holdout.nnz == 0


def test_files_are_written_per_protocol_round_trip_and_hash_the_same_wherever_they_are(tmp_path):
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"j{rng.integers(30)}", "view", 1.0, int(h)) for u in range(40) for h in rng.integers(0, 500, 12)]
    data = build_training_set(events(rows), PARAMS)
    files = TrainingSetFiles(str(tmp_path))
    payloads = data.to_files(files)
    assert {uri.removeprefix(f"{tmp_path}/") for uri in payloads} == {
        "full.npz",
        "times.npz",
        "user_ids.parquet",
        "item_ids.parquet",
        *(f"{protocol}/{matrix}.npz" for protocol in PROTOCOLS for matrix in PROTOCOL_MATRICES),
    }
    for uri, payload in payloads.items():
        storage.write_bytes(uri, payload)
    summary = TrainingSetSummary(
        **data.counts.model_dump(), window=Window(start="a", end="b", days=1), partitions=["a"], content_hash="h"
    )
    (tmp_path / "summary.json").write_bytes(summary.to_json())
    loaded = TrainingSet.load(files)
    for protocol, split in data.protocols.items():
        again = loaded.protocols[protocol]
        for matrix in PROTOCOL_MATRICES:
            assert (getattr(again, matrix) != getattr(split, matrix)).nnz == 0, (protocol, matrix)
        assert again.counts == split.counts and again.shared_cut == split.shared_cut
        assert (again.train_ages != split.train_ages).nnz == 0
    assert loaded.item_ids.equals(data.item_ids) and loaded.summary == summary
    # The hash depends on the contents only, not on where the files are written.
    elsewhere = build_training_set(events(rows), PARAMS).to_files(TrainingSetFiles("s3://bucket/other"))
    assert content_hash(payloads, str(tmp_path)) == content_hash(elsewhere, "s3://bucket/other")


def test_a_training_set_from_before_the_per_protocol_splits_is_refused_with_what_to_do(tmp_path):
    (tmp_path / "summary.json").write_text('{"events": 1, "train_pairs": 1, "cut_train_pairs": 1}')
    with pytest.raises(ValueError, match="written before splits were stored per protocol: materialize training_set"):
        TrainingSet.load(TrainingSetFiles(str(tmp_path)))


def test_the_protocol_names_and_the_protocol_table_agree():
    assert tuple(PROTOCOLS) == get_args(Protocol)


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
        row = getattr(data.protocols[PER_USER], matrix)[data.user_ids.to_pylist().index(user)]
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
    split = data.protocols[PER_USER]
    assert (split.train != split.fit + split.validation).nnz == 0
    assert split.train.multiply(split.holdout).nnz == 0 and split.fit.multiply(split.validation).nnz == 0
    # every held-out item also occurs in someone's training rows, so none is dropped
    assert (data.counts.users, data.counts.items, split.counts.holdout_pairs, split.counts.holdout_users) == (
        3,
        5,
        4,
        3,
    )
    assert split.counts.unscored_holdout_pairs == 0


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

    cut = data.protocols[GLOBAL_CUT]
    assert day(cut.holdout, "u1") == ["j4"]
    assert day(cut.validation, "u1") == ["j2", "j3"] and day(cut.fit, "u1") == ["j0", "j1"]
    # j2 and j3 are unseen in the fit split (cold for the search): validation keeps them as relevant pairs.
    assert not {"j2", "j3"} & {i for u in ("u1", "u2", "u3") for i in day(cut.fit, u)}
    assert day(cut.train, "u1") == ["j0", "j1", "j2", "j3"]
    # unscored: j5 for u1 and u2 (nobody saw it before the cut) and both of "late"'s pairs (no history)
    assert cut.counts.holdout_users == 2 and cut.counts.unscored_holdout_pairs == 4
    # the cut's days, counted once: the end is midnight after day 5 of 2026, the cut 2 days and 4 days before it
    end = data.counts.end_day
    assert (cut.fit_end, cut.train_end) == (end - 4, end - 2) and end == (T0.timestamp() / 86_400) + 6
    u1 = data.user_ids.to_pylist().index("u1")
    j0 = data.item_ids.to_pylist().index("j0")
    # j0 was first seen at 01:00 on day 0: 4 days minus an hour before the cut, 2 days minus an hour before the validation cut
    assert abs(cut.train_ages[u1, j0] - (4 - 1 / 24)) < 1e-3 and abs(cut.fit_ages[u1, j0] - (2 - 1 / 24)) < 1e-3
    per_user = data.protocols[PER_USER]
    assert abs(per_user.train_ages[u1, j0] - (6 - 1 / 24)) < 1e-3


def test_times_change_the_content_hash(tmp_path):
    rows = [(user, f"j{i}", "view", 1.0, i) for user in ("a", "b") for i in range(4)]
    files = TrainingSetFiles(str(tmp_path))
    early = build_training_set(events(rows), PARAMS).to_files(files)
    later = build_training_set(events([(u, j, t, w, h + 30) for u, j, t, w, h in rows]), PARAMS).to_files(files)
    assert content_hash(early, files.folder) != content_hash(later, files.folder)


def test_the_full_matrix_holds_every_pair_and_a_too_long_cut_is_named_with_its_numbers():
    # Three users, each seeing the 5 items in a rotated order every other day (days 0..8): 9 days of data.
    rows = [(f"u{u}", f"j{(i + u) % 5}", "view", 1.0, 48 * i + u) for u in range(3) for i in range(5)]
    params = PARAMS.model_copy(update={"cut_days": 2})
    data = build_training_set(events(rows), params)
    per_user = data.protocols[PER_USER]
    assert data.full.nnz == data.counts.full_pairs == 15 > per_user.train.nnz
    assert data.full.nnz == per_user.train.nnz + per_user.counts.holdout_pairs
    assert split_problem(data.counts, params) is None
    assert data.full_ages().max() == pytest.approx(9.0, abs=0.01)

    long_cut = PARAMS.model_copy(update={"cut_days": 5})
    short = build_training_set(events(rows), long_cut)
    cut = short.protocols[GLOBAL_CUT]
    assert cut.counts.fit_pairs == 0 and cut.fit_ages.nnz == 0
    assert split_problem(short.counts, long_cut) == (
        "training_set.cut_days=5 is too long for 9 days of data: the global time cut holds out the last 5 days, "
        "validates on the 5 before them and fits on what is earlier, which needs more than 10 days; empty: fit, "
        f"validation (0 fit, 0 validation, {cut.counts.holdout_pairs} holdout pairs). Lower "
        "training_set.cut_days to at most 4 or widen RECSYS_TRAINING_WINDOW_DAYS"
    )


def test_a_window_that_leaves_nothing_to_train_on_is_named_first():
    params = PARAMS.model_copy(update={"min_user_items": 30})  # nobody has 30 items: every pair is dropped
    rows = [(user, f"j{day}", "view", 1.0, 24 * day + 1) for user in ("u1", "u2") for day in range(6)]
    problem = split_problem(build_training_set(events(rows), params).counts, params)
    assert problem is not None and problem.startswith("no trainable data after filtering")
    assert "lower the activity minimums" in problem


def test_a_window_shorter_than_two_cuts_gives_an_empty_fit_split_with_empty_ages():
    params = PARAMS.model_copy(update={"cut_days": 7, "min_user_items": 2})
    rows = [(user, f"j{day}", "view", 1.0, 24 * day + 1) for user in ("u1", "u2") for day in range(6)]
    cut = build_training_set(events(rows), params).protocols[GLOBAL_CUT]
    assert cut.fit.nnz == 0 and cut.fit_ages.nnz == 0 and cut.fit_ages.shape == cut.fit.shape
    assert cut.train_ages.nnz == cut.train.nnz


def test_the_global_cut_widens_until_its_holdout_has_enough_users_and_says_so_when_it_cannot():
    # 12 days of data (days 0..11). Everyone starts on day 0; their last pair is on the day given.
    last_day = {"u0": 11, "u1": 9, "u2": 9, "u3": 5}
    rows = [(user, f"j{day}", "view", 1.0, 24 * day + 1) for user, last in last_day.items() for day in (0, 1, last)]
    # Every item is known from day 0, so every held-out pair is scorable.
    rows += [("seen-all", f"j{day}", "view", 1.0, 3) for day in range(12)]
    # A user whose whole history is in the last days has nothing to train on: never counted as a holdout user.
    rows += [("new", f"j{item}", "view", 1.0, 24 * day + 2) for item, day in ((9, 10), (10, 10), (11, 11))]
    params = PARAMS.model_copy(update={"cut_days": 2, "min_user_items": 2, "min_holdout_users": 3})
    data = build_training_set(events(rows), params)
    cut = data.protocols[GLOBAL_CUT]
    # 2 days hold out u0 only; 4 days (twice the cut) also u1 and u2.
    assert cut.counts.cut_days == 4 and cut.counts.holdout_users == 3
    assert (cut.fit_end, cut.train_end) == (data.counts.end_day - 8, data.counts.end_day - 4)
    assert small_holdouts(data.counts, params) == []

    # 10 users cannot be had: the cut widens as far as the span allows (3 x 4 days <= 12; 3 x 6 > 12) and says so.
    wanting = params.model_copy(update={"min_holdout_users": 10})
    data = build_training_set(events(rows), wanting)
    assert data.protocols[GLOBAL_CUT].counts.cut_days == 4
    assert small_holdouts(data.counts, wanting) == [
        "per_user: the holdout has 6 users, fewer than training_set.min_holdout_users=10 over 12 days of data: "
        "its verdicts are noisy (see each lift's interval); widen RECSYS_TRAINING_WINDOW_DAYS or lower "
        "training_set.min_holdout_users",
        "global_cut: the holdout has 3 users (the cut widened from 2 to 4 days), fewer than "
        "training_set.min_holdout_users=10 over 12 days of data: its verdicts are noisy (see each lift's "
        "interval); widen RECSYS_TRAINING_WINDOW_DAYS or raise training_set.cut_days or lower "
        "training_set.min_holdout_users",
    ]
    # Enough users at the configured cut: it is not widened.
    assert (
        build_training_set(events(rows), params.model_copy(update={"min_holdout_users": 1}))
        .protocols[GLOBAL_CUT]
        .counts.cut_days
        == 2
    )


def test_an_imported_history_is_told_the_window_and_the_cut_that_fit_it():
    # 300 users over 90 days (days 0..89): user u starts on day u % 30 and ends on day 89 - u % 60.
    users = np.arange(300)
    first, last = (users % 30).astype(float), (89 - users % 60).astype(float) + 0.5
    params = SplitParams(cut_days=7, min_holdout_users=200)
    # 7 days: users ending on day 83 or later (7 of every 60): 35; 14 days: 70; ... 28 days: 140; 35 days: 175,
    # and those must start before the cut too (all do).
    assert history_advice(first, last, params, window_days=28) == [
        "history: 90 days, 300 users",
        "RECSYS_TRAINING_WINDOW_DAYS=28 trains on its last 28 days only: set RECSYS_TRAINING_WINDOW_DAYS=90 to "
        "train on all of it",
        "global cut: no cut up to 28 days (a third of the history) holds out training_set.min_holdout_users=200 "
        "users with history before it (at most 140, at 28 days): its verdicts will be noisy; gate on per_user "
        "(trained_model.protocol) or lower training_set.min_holdout_users",
    ]
    fewer = SplitParams(cut_days=7, min_holdout_users=100)
    assert history_advice(first, last, fewer, window_days=120)[1:] == [
        "RECSYS_TRAINING_WINDOW_DAYS=120 covers all of it",
        "global cut: 21 days hold out about 105 users with history before them (training_set.cut_days=7 widens to "
        "it by itself over a window of at least 63 days)",
    ]


def test_rolling_folds_peel_the_newest_block_off_each_fit_by_hand():
    # User 0 saw items 0..4 (item 4 newest: ages 5..1 days), user 1 items 0 and 1 (ages 2 and 1), user 2 item 3.
    rows, cols = [0, 0, 0, 0, 0, 1, 1, 2], [0, 1, 2, 3, 4, 0, 1, 3]
    ages = np.array([5, 4, 3, 2, 1, 2, 1, 1], dtype=np.float32)
    fit = sp.csr_matrix((np.full(8, 3.0, dtype=np.float32), (rows, cols)), shape=(3, 5))
    age_matrix = sp.csr_matrix((ages, (rows, cols)), shape=(3, 5))
    validation = sp.csr_matrix(([1.0], ([2], [4])), shape=(3, 5), dtype=np.float32)
    split = dataclasses.replace(hand_split(fit, validation), age_at=lambda matrix, day: age_matrix)

    # Per user, a quarter of each user's fit items (at least one, from users with two or more) validate fold 1.
    first, second = rolling_folds(split, 2, validation_fraction=0.25)
    assert first.fit is split.fit and first.validation is split.validation
    assert second.validation.toarray().tolist() == [[0, 0, 0, 0, 1], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0]]
    assert second.fit.toarray().tolist() == [[3, 3, 3, 3, 0], [3, 0, 0, 0, 0], [0, 0, 0, 3, 0]]
    assert second.fit_ages.toarray().tolist() == [[5, 4, 3, 2, 0], [2, 0, 0, 0, 0], [0, 0, 0, 1, 0]]

    # After a global cut of 2 days, fold 1 validates on the fit's last 2 days; ages count from its own end.
    cut = dataclasses.replace(split, shared_cut=True, fit_end=10.0, train_end=12.0)
    folds = rolling_folds(cut, 3, validation_fraction=0.25)
    # User 2's single pair is 1 day old and they have nothing before it: not scored.
    assert folds[1].validation.toarray().tolist() == [[0, 0, 0, 0, 1], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0]]
    assert folds[1].fit.toarray().tolist() == [[3, 3, 3, 3, 0], [3, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    assert folds[1].fit_ages.toarray().tolist() == [[3, 2, 1, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    # Fold 2: the 2 days before that (items 2 and 3, 1 and 0 days old then) validate, items 0 and 1 fit;
    # user 1 is left with no history before them.
    assert folds[2].validation.toarray().tolist() == [[0, 0, 1, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    assert folds[2].fit.toarray().tolist() == [[3, 3, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
