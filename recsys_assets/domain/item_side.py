"""What the models know of the items besides the interactions: features, closed postings, posting days.

`ItemSource` is the item_features asset's output (features per catalogue row, each row's id and open
window); `ItemSide` is that source aligned to one training item index at one day: the features the
content families score with, the postings no family may recommend (closed by that day), and each
posting's age for freshness. `new_item_share` measures how much of a ranking goes to new postings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from recsys_assets.domain import storage
from recsys_assets.domain.item_features import align, features_from_bytes, positions
from recsys_assets.domain.items import days_since_epoch, open_mask
from recsys_assets.domain.layout import ItemFiles


@dataclass(frozen=True)
class ItemSide:
    """What content families know of the items of one training index.

    `features` has one L2-normalised row per item column (zero rows for items without features);
    `closed` is True for postings closed on or before the reference day (never recommended, by any
    family; False where the closing day is unknown).
    `posted` is each item's posting day (days since the epoch, NaN unknown), for freshness metrics, and
    `age` its age in days at the scoring day (NaN unknown), for the content families' recency prior.
    """

    features: sp.csr_matrix
    closed: np.ndarray
    posted: np.ndarray
    age: np.ndarray | None = None

    def recency(self, half_life_days: float | None) -> np.ndarray:
        """Each item's freshness weight 0.5^(age / half-life): 1 when off, unknown or not posted yet."""
        n = self.features.shape[0]
        if half_life_days is None or self.age is None:
            return np.ones(n, dtype=np.float32)
        age = np.nan_to_num(np.maximum(self.age, 0.0), nan=0.0)
        return np.power(0.5, age / half_life_days).astype(np.float32)


def item_side(
    features: sp.csr_matrix,
    feature_ids: pa.Array | pa.ChunkedArray,
    posted: np.ndarray,
    closed: np.ndarray,
    item_ids: pa.Array,
    reference_day: float,
    age_day: float | None = None,
) -> ItemSide:
    """The item side of training index `item_ids` at `reference_day` (days since the epoch).

    `posted`/`closed` are per feature row (days since the epoch, NaN unknown). A posting may be
    recommended unless it closed on or before the reference day; postings posted later are allowed,
    because serving scores them from their features the day they appear.
    """
    aligned = align(features, feature_ids, item_ids)
    rows = positions(item_ids, feature_ids)
    known = rows >= 0
    item_posted = np.full(len(item_ids), np.nan)
    item_closed = np.full(len(item_ids), np.nan)
    item_posted[known] = posted[rows[known]]
    item_closed[known] = closed[rows[known]]
    closed = ~open_mask(np.full(len(item_ids), np.nan), item_closed, reference_day)
    age = None if age_day is None else age_day - item_posted
    return ItemSide(features=aligned, closed=closed, posted=item_posted, age=age)


@dataclass(frozen=True)
class ItemSource:
    """The item_features asset's output: features per catalogue row, with each row's id and open window."""

    features: sp.csr_matrix
    item_ids: pa.Array
    posted: np.ndarray
    closed: np.ndarray

    @classmethod
    def load(cls, files: ItemFiles) -> ItemSource | None:
        """The features in `files`, or None when the catalogue was empty (no feature matrix written)."""
        if not storage.exists(files.transformer):
            return None
        rows = storage.table_from_bytes(storage.read_bytes(files.items))
        return cls(
            features=features_from_bytes(storage.read_bytes(files.features)),
            item_ids=rows["item_id"].combine_chunks(),
            posted=days_since_epoch(rows["posted_date"]),
            closed=days_since_epoch(rows["closed_date"]),
        )

    def side(self, item_ids: pa.Array, reference_day: float | None, age_day: float | None = None) -> ItemSide:
        """The item side of training index `item_ids` at `reference_day`; with none, nothing counts as closed.

        Ages (for the recency prior) are taken at `age_day`, by default the reference day.
        """
        day = -np.inf if reference_day is None else reference_day
        ages_at = reference_day if age_day is None else age_day
        return item_side(self.features, self.item_ids, self.posted, self.closed, item_ids, day, ages_at)


def new_item_share(recommendations: np.ndarray, posted: np.ndarray, reference_day: float, days: int) -> float:
    """Share of filled slots in `recommendations` (users x k, -1 empty) given to items under `days` days old.

    An item's age is `reference_day - posted`; items without a known posting day count as old.
    """
    filled = recommendations[recommendations >= 0]
    if len(filled) == 0:
        return 0.0
    with np.errstate(invalid="ignore"):
        young = (reference_day - posted[filled]) < days
    return float(np.mean(young))
