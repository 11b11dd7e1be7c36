"""Small matrices with known answers, and the item sides the content families need on them."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys_assets.domain.item_side import ItemSide
from recsys_assets.domain.records import ProtocolCounts
from recsys_assets.domain.splitting import ProtocolSplit

BLOCK = 6  # items per block and users per group


def block_matrix() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Two user groups, each liking its own block of 6 items (a checkerboard of two blocks).

    User j of group g has not seen items j and j+1 (mod 6) of its block: item j is held out,
    item j+1 is simply unseen. Every user saw the 4 other items of its block and nothing else.
    """
    rows, cols, hidden = [], [], []
    for group in range(2):
        for j in range(BLOCK):
            user = group * BLOCK + j
            for i in range(BLOCK):
                if i not in (j, (j + 1) % BLOCK):
                    rows.append(user)
                    cols.append(group * BLOCK + i)
            hidden.append(group * BLOCK + j)
    n = 2 * BLOCK
    train = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n))
    holdout = sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), hidden)), shape=(n, n))
    return train, holdout


def own_block_unseen(user: int) -> set[int]:
    group, j = divmod(user, BLOCK)
    return {group * BLOCK + j, group * BLOCK + (j + 1) % BLOCK}


def small_matrix() -> sp.csr_matrix:
    """5 items; user 0 saw {0, 1, 2}, user 1 saw {2, 3}, user 2 saw {0, 3, 4}.

    Every unseen item of users 0 and 1 shares a user with something they saw, so item-kNN scores it too.
    """
    return sp.csr_matrix(np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 0], [1, 0, 0, 1, 1]], dtype=np.float32))


def ages_like(matrix: sp.csr_matrix, age: float = 1.0) -> sp.csr_matrix:
    """Every entry of `matrix` `age` days old."""
    return sp.csr_matrix((np.full(matrix.nnz, age, np.float32), matrix.indices, matrix.indptr), shape=matrix.shape)


def block_items(n_items: int, closed: np.ndarray | None = None) -> ItemSide:
    """An item side whose features say which block of `BLOCK` items each item is in (what content families read)."""
    blocks = np.arange(n_items) // BLOCK
    features = sp.csr_matrix(
        (np.ones(n_items, np.float32), (np.arange(n_items), blocks)), shape=(n_items, int(blocks.max()) + 1)
    )
    return ItemSide(
        features=features,
        closed=np.zeros(n_items, dtype=bool) if closed is None else closed,
        posted=np.full(n_items, np.nan),
    )


def one_day_old(matrix: sp.csr_matrix, _: float = 0.0) -> sp.csr_matrix:
    """Every entry of `matrix` one day old: the ages of a split built by hand."""
    return ages_like(matrix, 1.0)


def hand_split(
    fit: sp.csr_matrix,
    validation: sp.csr_matrix,
    train: sp.csr_matrix | None = None,
    holdout: sp.csr_matrix | None = None,
    name: str = "per_user",
    cold_holdout: sp.csr_matrix | None = None,
) -> ProtocolSplit:
    """A protocol split of the given matrices (train defaults to fit, holdout to validation, no cold items),
    every pair a day old and every split ending on day 0."""
    train = fit if train is None else train
    holdout = validation if holdout is None else holdout
    cold = sp.csr_matrix(holdout.shape, dtype=np.float32) if cold_holdout is None else cold_holdout
    counts = ProtocolCounts(
        fit_pairs=fit.nnz,
        validation_pairs=validation.nnz,
        train_pairs=train.nnz,
        holdout_pairs=holdout.nnz,
        holdout_users=int((np.diff(holdout.indptr) > 0).sum()),
        unscored_holdout_pairs=0,
        cold_item_pairs=cold.nnz,
        fit_end=0.0,
        train_end=0.0,
    )
    return ProtocolSplit(
        name, fit, validation, train, holdout, cold, 0.0, 0.0, counts, shared_cut=False, age_at=one_day_old
    )
