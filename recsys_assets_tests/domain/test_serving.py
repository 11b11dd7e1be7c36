"""`load_bundle` verifies every file against the manifest and serves item ids for known and unknown users."""

import hashlib
import json

import numpy as np
import pyarrow as pa
import pytest

from recsys_assets.domain import storage
from recsys_assets.domain.families import new_model, rank_users
from recsys_assets.serving import BundleIntegrityError, load_bundle
from recsys_assets_tests.domain.test_families import block_matrix
from recsys_assets_tests.domain.test_records import manifest_v2


def write_bundle(folder, family: str, params: dict) -> tuple[list[str], list[str], object]:
    train, _ = block_matrix()
    model = new_model(family, params).fit(train)
    users = [f"u{i}" for i in range(train.shape[0])]
    items = [f"j{i}" for i in range(train.shape[1])]
    files = {
        "model.npz": model.to_bytes(),
        "user_ids.parquet": storage.table_to_bytes(pa.table({"user_id": users})),
        "item_ids.parquet": storage.table_to_bytes(pa.table({"item_id": items})),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    manifest = {
        **manifest_v2(),
        "model": {"family": family, "params": params},
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return users, items, model


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
