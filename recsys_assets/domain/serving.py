"""Serve a model bundle: verify it, load it, and recommend item ids for a user id and their history.

One format for every family: `manifest.json` (family, parameters, checksums of every other file),
`model.npz` (the family's arrays, refitted on the whole window: what production serves),
`evaluated/<protocol>.npz` (the same family and parameters trained on each protocol's train split:
what the offline evaluation scored), the user and item id maps, and `history.npz` (which items each
user saw in the served model's window). The scoring contract is the one the offline evaluation uses:
a user (known by id, or folded in from their history where the family allows) plus the set of items
they saw, which are never recommended back.
"""

from __future__ import annotations

import hashlib
import io
import operator
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from recsys_assets.domain import storage
from recsys_assets.domain.errors import BundleIntegrityError
from recsys_assets.domain.events import filled_numpy
from recsys_assets.domain.families.base import Recommender, binary
from recsys_assets.domain.families.registry import load_model, new_model, restore_model
from recsys_assets.domain.item_features import ItemFeaturizer
from recsys_assets.domain.items import conform_items, days_since_epoch
from recsys_assets.domain.layout import BundleFile
from recsys_assets.domain.names import is_safe_name
from recsys_assets.domain.records import Manifest
from recsys_assets.domain.text_files import blank_ids

# Files of bundles written before every family had one format (ALS factors only).
LEGACY_FACTORS = {"user_factors": "user_factors.npy", "item_factors": "item_factors.npy"}


class ServingInputError(ValueError):
    """An argument of a serving call is out of bounds (the message names it); nothing was changed."""


def list_length(n: object, catalogue_size: int) -> int:
    """`n` as a list length: a whole number of at least 1, clamped to the catalogue size (no list is longer)."""
    if isinstance(n, bool):
        raise ServingInputError(f"n must be a whole number of at least 1, got {n!r}")
    try:
        length = operator.index(n)  # type: ignore[arg-type]
    except TypeError:
        raise ServingInputError(f"n must be a whole number of at least 1, got {str(n)[:40]!r}") from None
    if length < 1:
        raise ServingInputError(f"n must be a whole number of at least 1, got {length}")
    return min(length, catalogue_size)


def seen_collection(seen_item_ids: object) -> Iterable[Hashable]:
    """`seen_item_ids` when it is a collection of ids; a bare string would be read one character per id."""
    if isinstance(seen_item_ids, str | bytes) or not isinstance(seen_item_ids, Iterable):
        raise ServingInputError(
            f"seen_item_ids must be a collection of item ids (a list or set), got {type(seen_item_ids).__name__}"
        )
    return seen_item_ids


@dataclass
class Bundle:
    """A loaded, verified bundle."""

    uri: str
    version: str
    model: Recommender[Any]
    user_ids: pa.Array
    item_ids: pa.Array
    manifest: Manifest | None = None
    # The fitted item feature transformer, when the bundle carries one (content and hybrid families).
    featurizer: ItemFeaturizer | None = None
    # Which items each training user saw (binary, users x items), when the bundle carries it.
    history: sp.csr_matrix | None = None

    def __post_init__(self) -> None:
        self._user_row = {user: row for row, user in enumerate(self.user_ids.to_pylist())}
        self._item_column = {item: column for column, item in enumerate(self.item_ids.to_pylist())}
        self._items = self.item_ids.to_pylist()
        self._popularity: Recommender[Any] | None = None

    def knows_user(self, user_id: Hashable) -> bool:
        """Whether the model was trained on `user_id`."""
        return user_id in self._user_row

    def knows_item(self, item_id: Hashable) -> bool:
        """Whether `item_id` is in the bundle's catalogue."""
        return item_id in self._item_column

    def seen_item_ids(self, user_id: Hashable) -> list:
        """The items `user_id` saw in the served model's window (`history.npz`); [] for an unknown user.

        Raises:
            BundleIntegrityError: the bundle carries no history (written before bundles had one).
        """
        if self.history is None:
            raise BundleIntegrityError(f"bundle {self.uri} has no {BundleFile.HISTORY}: it cannot tell what a user saw")
        row = self._user_row.get(user_id)
        if row is None:
            return []
        return [
            self._items[column]
            for column in self.history.indices[self.history.indptr[row] : self.history.indptr[row + 1]]
        ]

    def exclude_closed(self, snapshot: pa.Table) -> int:
        """Never recommend the postings `snapshot` (a day's catalogue, `items.as_of`) says are closed.

        This replaces the model's excluded items (the mask it was built with): a posting closed since
        the build is excluded, one the snapshot does not list or lists as open is not. Returns how
        many of the bundle's items are excluded now.
        """
        closed_ids = snapshot.filter(pc.is_valid(snapshot["closed_date"]))["item_id"]
        mask = filled_numpy(pc.is_in(self.item_ids, value_set=closed_ids.combine_chunks()), False).astype(bool)
        self.model.exclude_items(mask)
        if self._popularity is not None:
            self._popularity.exclude_items(mask)
        return int(np.count_nonzero(mask))

    def popular(self, seen_item_ids: Iterable[Hashable], n: int = 10) -> list:
        """Up to `n` item ids by how many users saw them (`history.npz`), never one of `seen_item_ids`.

        The fallback for a user the model cannot rank for; it excludes what the model excludes.
        """
        return self._ranked(self.popularity_model(), -1, seen_item_ids, n)

    def popularity_model(self) -> Recommender[Any]:
        """The fallback's model: items by how many users saw them (`history.npz`), excluding what the model excludes."""
        if self._popularity is None:
            if self.history is None:
                raise BundleIntegrityError(f"bundle {self.uri} has no {BundleFile.HISTORY}: it has no popularity")
            # Postings added since the build (`add_postings`) are columns no user saw yet.
            seen = sp.csr_matrix(
                (self.history.data, self.history.indices, self.history.indptr),
                shape=(self.history.shape[0], len(self._items)),
            )
            self._popularity = new_model("popularity").fit(seen).exclude_items(self.model.excluded)
        return self._popularity

    def user_rows(self, user_ids: Iterable[Hashable]) -> np.ndarray:
        """Training rows of `user_ids`, -1 for users the model was not trained on."""
        return np.array([self._user_row.get(user, -1) for user in user_ids], dtype=np.int64)

    def item_columns(self, item_ids: Iterable[Hashable]) -> np.ndarray:
        """Columns of `item_ids`, -1 for items outside the bundle's catalogue."""
        return np.array([self._item_column.get(item, -1) for item in item_ids], dtype=np.int64)

    def add_postings(self, postings: pa.Table, today: date | None = None) -> int:
        """Make new postings (catalogue contract rows) recommendable from their features, without a retrain.

        Postings the bundle already knows are skipped; returns how many were added.

        Args:
            postings: rows of the catalogue contract.
            today: postings closed on or before this day are refused (default: today in UTC).

        Raises:
            ServingInputError: a posting has no id, an id repeats, or a posting is closed (on or before
                `today`, or before it was posted); the message counts each and nothing is added.
            ValueError: the bundle has no feature transformer or its family cannot score new postings.
        """
        if self.featurizer is None:
            raise ValueError(f"bundle {self.uri} carries no item feature transformer: it cannot score new postings")
        postings = conform_items(postings)
        _refuse_unservable(postings, today or datetime.now(UTC).date())
        new = postings.filter(pc.invert(pc.is_in(postings["item_id"], value_set=self.item_ids)))
        if new.num_rows == 0:
            return 0
        self.model = self.model.with_new_items(self.featurizer.transform(new), days_since_epoch(new["posted_date"]))
        self.item_ids = pa.concat_arrays([self.item_ids, new["item_id"].combine_chunks()])
        self.__post_init__()
        return new.num_rows

    def recommend(self, user_id: Hashable, seen_item_ids: Iterable[Hashable], n: int = 10) -> list:
        """Up to `n` item ids for `user_id`, never one of `seen_item_ids` (unknown ids are ignored).

        Raises:
            ServingInputError: `n` is not a whole number of at least 1 (a larger `n` than the catalogue
                is clamped to it), or `seen_item_ids` is not a collection.
        """
        if not isinstance(user_id, Hashable):
            raise ServingInputError(f"user_id must be an id (text or a number), got {type(user_id).__name__}")
        return self._ranked(self.model, self._user_row.get(user_id, -1), seen_item_ids, n)

    def _ranked(self, model: Recommender[Any], row: int, seen_item_ids: Iterable[Hashable], n: int) -> list:
        """`model`'s top `n` item ids for training row `row` (-1: unknown) with history `seen_item_ids`."""
        n = list_length(n, len(self._items))
        try:
            columns = self.item_columns(seen_collection(seen_item_ids))
        except TypeError:  # an unhashable element: a list or dict where an id belongs
            raise ServingInputError("seen_item_ids must hold item ids (text or numbers), not lists or maps") from None
        columns = np.unique(columns[columns >= 0])
        seen = sp.csr_matrix(
            (np.ones(len(columns), np.float32), columns, np.array([0, len(columns)])), shape=(1, len(self._items))
        )
        ranked = model.recommend(np.array([row], dtype=np.int64), seen, n)[0]
        return [self._items[column] for column in ranked if column >= 0]


def _refuse_unservable(postings: pa.Table, today: date) -> None:
    """Refuse `postings` when any has no id, repeats an id, or is closed; the message counts each kind."""
    ids = postings["item_id"]
    blank = filled_numpy(blank_ids(ids), True).astype(bool)
    non_null = ids.filter(pa.array(~blank))
    null_ids = int(np.count_nonzero(blank))
    repeated = len(non_null) - pc.count_distinct(non_null).as_py()
    closed = postings["closed_date"]
    already_closed = pc.sum(pc.cast(pc.less_equal(closed, pa.scalar(today, pa.date32())), pa.int64())).as_py() or 0
    inverted = pc.sum(pc.cast(pc.less(closed, postings["posted_date"]), pa.int64())).as_py() or 0
    if null_ids or repeated or already_closed or inverted:
        raise ServingInputError(
            f"add_postings refused {postings.num_rows} postings: {null_ids} without an id, {repeated} repeated ids, "
            f"{already_closed} closed on or before {today}, {inverted} closed before they were posted; "
            "nothing was added"
        )


def _safe_file_name(name: str) -> bool:
    """Whether a manifest's file name is a relative path of safe segments (never `..`, never absolute)."""
    return all(is_safe_name(segment) for segment in name.split("/"))


def verified_files(uri: str, manifest: Manifest, read: Callable[[str], bytes]) -> dict[str, bytes]:
    """Every file the manifest lists, read by name and checked against its SHA-256.

    Every name is checked before any is read: a manifest naming `../../../dev/zero` must not be followed.
    """
    unsafe = [name for name in manifest.files if not _safe_file_name(name)]
    if unsafe:
        raise BundleIntegrityError(
            f"bundle {uri}: its manifest lists {len(unsafe)} file names that are not relative names inside the "
            f"bundle, e.g. {unsafe[0][:80]!r}; nothing was read"
        )
    files = {}
    for name, expected in manifest.files.items():
        try:
            data = read(name)
        except FileNotFoundError as exc:
            raise BundleIntegrityError(f"bundle {uri} lacks {name}, which its manifest lists") from exc
        if hashlib.sha256(data).hexdigest() != expected:
            raise BundleIntegrityError(f"bundle {uri}: {name} does not match the checksum in its manifest")
        files[name] = data
    return files


def model_from_files(manifest: Manifest, files: dict[str, bytes], protocol: str | None = None) -> Recommender[Any]:
    """The served model, or with `protocol` the model that protocol's offline evaluation scored."""
    family, params = manifest.model.family, manifest.model.params
    if protocol is not None:
        name = BundleFile.evaluated(protocol)
        if name not in files:
            evaluated = sorted(f for f in files if f.startswith(BundleFile.EVALUATED_FOLDER + "/")) or "none"
            raise BundleIntegrityError(
                f"bundle {manifest.model_name}/{manifest.version} has no {name} (evaluated models: {evaluated})"
            )
        return load_model(family, params, files[name])
    if BundleFile.MODEL in files:
        return load_model(family, params, files[BundleFile.MODEL])
    if family == "als" and all(name in files for name in LEGACY_FACTORS.values()):
        arrays = {key: np.load(io.BytesIO(files[name]), allow_pickle=False) for key, name in LEGACY_FACTORS.items()}
        return restore_model(family, params, arrays)
    raise BundleIntegrityError(f"bundle {manifest.model_name}/{manifest.version} has no {BundleFile.MODEL}")


def load_bundle(uri: str, protocol: str | None = None) -> Bundle:
    """The bundle at `uri` (a folder or s3:// / gs:// prefix), verified against its manifest's checksums.

    Args:
        uri: Where the bundle is.
        protocol: None serves `model.npz`, the refit on the whole window; `per_user` or `global_cut`
            serves the model that protocol's offline evaluation scored (it reproduces its lists exactly).
    """
    return open_bundle(uri, lambda name: storage.read_bytes(storage.join(uri, name)), protocol)


def open_bundle(uri: str, read: Callable[[str], bytes], protocol: str | None = None) -> Bundle:
    """The bundle whose files `read` returns by name (`uri` only names it in errors), verified."""
    manifest = Manifest.from_json(read(BundleFile.MANIFEST))
    files = verified_files(uri, manifest, read)
    for name in (BundleFile.USER_IDS, BundleFile.ITEM_IDS):
        if name not in files:
            raise BundleIntegrityError(f"bundle {uri} has no checksummed {name}")
    user_ids = storage.table_from_bytes(files[BundleFile.USER_IDS])["user_id"].combine_chunks()
    item_ids = storage.table_from_bytes(files[BundleFile.ITEM_IDS])["item_id"].combine_chunks()
    history = None
    if BundleFile.HISTORY in files:
        history = binary(storage.sparse_from_bytes(files[BundleFile.HISTORY]))
        if history.shape != (len(user_ids), len(item_ids)):
            raise BundleIntegrityError(
                f"bundle {uri}: {BundleFile.HISTORY} is {history.shape[0]} x {history.shape[1]}, "
                f"but the id maps hold {len(user_ids)} users and {len(item_ids)} items"
            )
    return Bundle(
        uri=uri,
        version=manifest.version,
        manifest=manifest,
        model=model_from_files(manifest, files, protocol),
        user_ids=user_ids,
        item_ids=item_ids,
        featurizer=(
            ItemFeaturizer.from_bytes(files[BundleFile.ITEM_TRANSFORMER])
            if BundleFile.ITEM_TRANSFORMER in files
            else None
        ),
        history=history,
    )
