"""Steck's EASE: a closed-form item-item model, and the memory rule that decides whether it can be fitted."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recsys_assets.domain.families.base import DenseScorer, FamilyParams, Space, Span, decayed

# Item columns of the EASE Gram matrix computed per sparse product.
GRAM_BLOCK = 2048


class EASEParams(FamilyParams):
    """The ridge penalty of the closed form, relative to the data's scale.

    λ = `regularization` x the mean of diag(XᵀX): the same value regularises alike whatever the
    confidences' scale (ratings 4-5, event weights 1/3/5, decay) and the number of users, where an
    absolute λ = 200 on rating-weighted MovieLens acted like λ = 10 on the binary matrix.
    """

    regularization: float = Field(
        default=1.0, gt=0, description="λ added to the Gram matrix's diagonal, as a multiple of its mean."
    )

    space: ClassVar[Space] = FamilyParams.space | {"regularization": Span(0.05, 50.0, log=True)}
    first_trial: ClassVar[dict[str, Any]] = {"regularization": 1.0}


def available_memory_bytes() -> int:
    """Memory the kernel says is available now (Linux), else the physical memory."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def ease_memory_bytes(n_items: int) -> int:
    """Peak memory of an EASE fit: the Gram matrix, its inverse and LAPACK's copy, plus a margin (float32)."""
    return 4 * 4 * n_items * n_items


class EASE(DenseScorer[EASEParams]):
    """Steck's EASE: B = -P / diag(P) with P = (XᵀX + λI)⁻¹ and a zero diagonal, in float32."""

    family = "ease"
    params_type = EASEParams

    # B (items x items), once fitted or restored.
    weights: np.ndarray | None = None

    @classmethod
    def skip_reason(cls, n_items, settings):
        """EASE holds items² matrices: skipped over `ease_max_gib`, or over its share of the memory available now."""
        needed, available = ease_memory_bytes(n_items), available_memory_bytes()
        if needed > settings.ease_max_gib * 2**30:
            return (
                f"{n_items:,} items need ~{needed / 2**30:.1f} GiB (4 x items² float32), over "
                f"the {settings.ease_max_gib:g} GiB EASE budget (ease_max_gib)"
            )
        if needed > settings.ease_memory_fraction * available:
            return (
                f"{n_items:,} items need ~{needed / 2**30:.1f} GiB (4 x items² float32), over "
                f"{settings.ease_memory_fraction:.0%} of the {available / 2**30:.1f} GiB available"
            )
        return None

    def fit(self, matrix, ages=None, callback=None):
        x = sp.csc_matrix(decayed(matrix, ages, self.params.half_life_days).astype(np.float32))
        # The Gram matrix is filled block by block: a sparse XᵀX of a dense-ish result is several
        # times the dense matrix's size (measured at 20 GiB for 26k items) before `toarray`.
        n_items = x.shape[1]
        gram = np.empty((n_items, n_items), dtype=np.float32)
        xt = sp.csr_matrix(x.T)
        for start in range(0, n_items, GRAM_BLOCK):
            gram[:, start : start + GRAM_BLOCK] = (xt @ x[:, start : start + GRAM_BLOCK]).toarray()
        diagonal = np.diag_indices_from(gram)
        scale = float(gram[diagonal].mean()) if n_items else 1.0
        gram[diagonal] += np.float32(self.params.regularization * max(scale, np.finfo(np.float32).tiny))
        precision = np.linalg.inv(gram)
        del gram
        precision /= -np.diag(precision)[None, :]
        np.fill_diagonal(precision, 0.0)
        self.weights = precision
        return self

    def scores(self, users, seen):
        assert self.weights is not None, "fit or load the model first"
        return np.asarray(seen @ self.weights, dtype=np.float32)

    def arrays(self):
        assert self.weights is not None
        return {"weights": self.weights}

    def restore(self, arrays):
        self.weights = np.asarray(arrays["weights"], dtype=np.float32)
        return self
