"""`load_bundle` verifies every file against the manifest and serves item ids for known and unknown users."""

import hashlib
import json
from datetime import date

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from recsys_assets.domain import storage
from recsys_assets.domain.families.base import rank_users
from recsys_assets.domain.families.registry import new_model
from recsys_assets.domain.serving import open_bundle
from recsys_assets.serving import BundleIntegrityError, ServingInputError, load_bundle
from recsys_assets_tests.support.families import block_matrix
from recsys_assets_tests.support.records import manifest_v2


def write_bundle(
    folder, family: str, params: dict, extra: dict[str, bytes] | None = None
) -> tuple[list[str], list[str], object]:
    train, _ = block_matrix()
    model = new_model(family, params).fit(train)
    users = [f"u{i}" for i in range(train.shape[0])]
    items = [f"j{i}" for i in range(train.shape[1])]
    files = {
        "model.npz": model.to_bytes(),
        "user_ids.parquet": storage.table_to_bytes(pa.table({"user_id": users})),
        "item_ids.parquet": storage.table_to_bytes(pa.table({"item_id": items})),
        **(extra or {}),
    }
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    manifest = {
        **manifest_v2(),
        "model": {"family": family, "params": params},
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return users, items, model


def rewrite_model(folder, data: bytes) -> None:
    """Replace the bundle's model.npz and its checksum in the manifest."""
    (folder / "model.npz").write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["model.npz"] = hashlib.sha256(data).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("family", "params"),
    [("ease", {"regularization": 1.0}), ("als", {"factors": 4, "iterations": 10, "num_threads": 1, "random_state": 0})],
)
def test_serving_returns_the_offline_lists_as_ids_and_folds_in_unknown_users(tmp_path, family, params):
    users, items, model = write_bundle(tmp_path, family, params)
    train, _ = block_matrix()
    bundle = load_bundle(str(tmp_path))
    offline = rank_users(model, train, 3)(np.arange(len(users)))
    for row, user in enumerate(users):
        seen = [items[i] for i in train[row].indices]
        assert bundle.recommend(user, seen, n=3) == [items[i] for i in offline[row] if i >= 0]
    # A newcomer with user 0's history gets user 0's own block (folded in), never what they saw.
    newcomer = bundle.recommend("someone-new", [items[i] for i in train[0].indices] + ["not-in-catalogue"], n=2)
    assert set(newcomer) == {"j0", "j1"}


def test_a_tampered_or_missing_file_is_refused(tmp_path):
    write_bundle(tmp_path, "popularity", {})
    (tmp_path / "model.npz").write_bytes((tmp_path / "model.npz").read_bytes() + b"x")
    with pytest.raises(BundleIntegrityError, match=r"model\.npz does not match"):
        load_bundle(str(tmp_path))
    (tmp_path / "model.npz").unlink()
    with pytest.raises(BundleIntegrityError, match=r"lacks model\.npz"):
        load_bundle(str(tmp_path))


def test_a_protocol_serves_that_protocols_evaluated_model_and_the_default_serves_model_npz(tmp_path):
    train, _ = block_matrix()
    served = new_model("popularity", {}).fit(train)
    # The evaluated model saw only user 0's rows: its popularity ranking differs from the served one.
    evaluated = new_model("popularity", {}).fit(sp.csr_matrix(train.multiply(np.arange(train.shape[0])[:, None] == 0)))
    _, items, _ = write_bundle(tmp_path, "popularity", {}, extra={"evaluated/global_cut.npz": evaluated.to_bytes()})
    rewrite_model(tmp_path, served.to_bytes())

    def top(model) -> list[str]:
        return [items[i] for i in rank_users(model, sp.csr_matrix(train.shape, dtype=np.float32), 3)(np.array([0]))[0]]

    assert load_bundle(str(tmp_path)).recommend("u0", [], n=3) == top(served)
    assert load_bundle(str(tmp_path), protocol="global_cut").recommend("u0", [], n=3) == top(evaluated) != top(served)
    with pytest.raises(
        BundleIntegrityError,
        match=r"has no evaluated/per_user\.npz \(evaluated models: \['evaluated/global_cut\.npz'\]\)",
    ):
        load_bundle(str(tmp_path), protocol="per_user")


def test_the_history_gives_each_users_seen_items_and_the_popularity_fallback(tmp_path):
    train, _ = block_matrix()
    users, items, _ = write_bundle(
        tmp_path,
        "als",
        {"factors": 4, "iterations": 5, "num_threads": 1, "random_state": 0},
        extra={"history.npz": storage.sparse_to_bytes(train)},
    )
    bundle = load_bundle(str(tmp_path))
    assert bundle.seen_item_ids(users[0]) == [items[i] for i in train[0].indices]
    assert bundle.seen_item_ids("stranger") == []
    counts = np.asarray(train.sum(axis=0)).ravel()
    by_popularity = [items[i] for i in np.lexsort((np.arange(len(counts)), -counts))]
    assert bundle.popular([], 3) == by_popularity[:3]
    assert bundle.popular(by_popularity[:2], 3) == by_popularity[2:5]


def test_closed_postings_of_a_snapshot_replace_the_build_time_mask(tmp_path):
    train, _ = block_matrix()
    _, items, _ = write_bundle(tmp_path, "popularity", {}, extra={"history.npz": storage.sparse_to_bytes(train)})
    bundle = load_bundle(str(tmp_path))
    bundle.model.exclude_items(np.arange(len(items)) == 0)  # as if built with the first item closed
    snapshot = pa.table(
        {
            "item_id": [items[0], items[1], "not-in-the-bundle"],
            "closed_date": [None, date(2026, 3, 1), date(2026, 3, 1)],
        },
        schema=pa.schema([("item_id", pa.string()), ("closed_date", pa.date32())]),
    )
    assert bundle.exclude_closed(snapshot) == 1
    assert bundle.model.excluded is not None and list(np.flatnonzero(bundle.model.excluded)) == [1]
    assert items[1] not in bundle.popular([], len(items)) and items[0] in bundle.popular([], len(items))


def test_a_history_that_does_not_fit_the_id_maps_or_a_missing_one_is_refused(tmp_path):
    write_bundle(tmp_path, "popularity", {}, extra={"history.npz": storage.sparse_to_bytes(sp.csr_matrix((3, 2)))})
    with pytest.raises(
        BundleIntegrityError, match=r"history\.npz is 3 x 2, but the id maps hold 12 users and 12 items"
    ):
        load_bundle(str(tmp_path))
    (tmp_path / "history.npz").unlink()
    write_bundle(tmp_path, "popularity", {})
    with pytest.raises(BundleIntegrityError, match=r"has no history\.npz: it cannot tell what a user saw"):
        load_bundle(str(tmp_path)).seen_item_ids("u0")


def test_n_is_a_whole_number_from_1_and_clamped_to_the_catalogue(tmp_path):
    _, items, _ = write_bundle(tmp_path, "popularity", {})
    bundle = load_bundle(str(tmp_path))
    # 10**9 would allocate gigabytes inside the family's top-k: the list is clamped to the catalogue first.
    assert len(bundle.recommend("u0", [], n=10**9)) == len(items)
    assert bundle.recommend("u0", [], n=np.int64(2)) == bundle.recommend("u0", [], n=2)  # type: ignore[arg-type]
    for bad in (-1, 0, 2.5, "3", True, None):
        with pytest.raises(ServingInputError, match="n must be a whole number of at least 1"):
            bundle.recommend("u0", [], n=bad)  # type: ignore[arg-type]


def test_seen_item_ids_must_be_a_collection_not_a_bare_string(tmp_path):
    _, items, _ = write_bundle(tmp_path, "popularity", {})
    bundle = load_bundle(str(tmp_path))
    with pytest.raises(ServingInputError, match="seen_item_ids must be a collection of item ids"):
        bundle.recommend("u0", items[0], n=3)
    with pytest.raises(ServingInputError, match="got int"):
        bundle.recommend("u0", 7, n=3)  # type: ignore[arg-type]
    with pytest.raises(ServingInputError, match="seen_item_ids must hold item ids"):
        bundle.recommend("u0", [[items[0]]], n=3)  # type: ignore[list-item]
    with pytest.raises(ServingInputError, match="user_id must be an id"):
        bundle.recommend(["u0"], [], n=3)  # type: ignore[arg-type]
    assert items[0] not in bundle.recommend("u0", {items[0]}, n=len(items))


@pytest.mark.parametrize("name", ["../../../dev/zero", "/dev/zero", "evaluated/../../x", "a//b", ""])
def test_a_manifest_naming_a_file_outside_the_bundle_is_refused_before_any_read(tmp_path, name):
    write_bundle(tmp_path, "popularity", {})
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["files"][name] = "0" * 64
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    read = []

    def reader(file: str) -> bytes:
        read.append(file)
        return (tmp_path / file).read_bytes()

    with pytest.raises(BundleIntegrityError, match="not relative names inside the bundle"):
        open_bundle(str(tmp_path), reader)
    assert read == ["manifest.json"]
