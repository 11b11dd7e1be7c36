"""How sure a comparison of two models on the same users is: a paired bootstrap of the relative lift.

Both models are scored on the same holdout users, so the comparison resamples users (not each
model's scores apart): each resample draws users with replacement and takes the ratio of the two
models' mean NDCG over the same draw. The 2.5/97.5 percentiles of that ratio, minus one, are the 95%
interval of the lift.

Above `GROUPS` users the resampling is over `GROUPS` seeded random groups of users (each group's
summed scores), which has the same expected variance as resampling users and keeps 1,000 resamples
at 200 k users at 0.15-0.2 s on this machine under load 11 (the user-level draw took ~7 s).
"""

from __future__ import annotations

import numpy as np

from recsys_assets.domain.records import Lift

RESAMPLES = 1000
GROUPS = 2048
# Resamples drawn per block: bounds the index and count matrices at RESAMPLE_BLOCK x GROUPS x 8 bytes (16 MB each).
RESAMPLE_BLOCK = 1000
LEVEL = 0.95


def paired_lift(
    model: np.ndarray, reference: np.ndarray, *, resamples: int = RESAMPLES, seed: int = 0, level: float = LEVEL
) -> Lift:
    """The relative lift of `model` over `reference` (per-user scores of the same users) and its `level` interval."""
    if model.shape != reference.shape:
        raise ValueError(f"paired scores differ in length: {model.shape} and {reference.shape}")
    users = len(model)
    model_mean = float(model.mean()) if users else 0.0
    reference_mean = float(reference.mean()) if users else 0.0
    if reference_mean <= 0:
        return Lift(users=users, model=model_mean, reference=reference_mean)
    rng = np.random.default_rng(seed)
    pairs = np.stack([model, reference], axis=1).astype(np.float64)
    if users > GROUPS:
        group = rng.permutation(users) % GROUPS
        pairs = np.stack([np.bincount(group, pairs[:, column], GROUPS) for column in (0, 1)], axis=1)
    units = len(pairs)
    ratios = np.empty(resamples)
    for start in range(0, resamples, RESAMPLE_BLOCK):
        block = min(RESAMPLE_BLOCK, resamples - start)
        drawn = rng.integers(0, units, size=(block, units), dtype=np.int64)
        # How often each resample drew each unit, then one matrix product: a gather-and-sum is 10x slower.
        drawn += np.arange(block, dtype=np.int64)[:, None] * units
        counts = np.bincount(drawn.ravel(), minlength=block * units).reshape(block, units).astype(np.float64)
        totals = counts @ pairs
        # A resample whose reference total is 0 has no ratio; it counts as an unbounded lift either way.
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios[start : start + block] = np.where(totals[:, 1] > 0, totals[:, 0] / totals[:, 1], np.inf)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail], method="nearest")  # no interpolation with inf
    return Lift(
        users=users,
        model=model_mean,
        reference=reference_mean,
        lift=model_mean / reference_mean - 1,
        low=float(low) - 1,
        high=float(high) - 1,
    )
