"""Every model family by name: the one module that knows them all.

Adding a family is its module (a `Recommender[P]` subclass and its `FamilyParams` subclass `P`,
with its search space and first trial), one entry in `FAMILY_CLASSES`, its name in `Family`
(a test checks the two agree), and one entry in the shared family tests
(`recsys_assets_tests/domain/test_families.py`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, Literal, get_args

import numpy as np

from recsys_assets.domain.families.base import EXCLUDED_ARRAY, FamilyParams, Recommender
from recsys_assets.domain.families.content import Content
from recsys_assets.domain.families.ease import EASE
from recsys_assets.domain.families.factors import ALS, BPR
from recsys_assets.domain.families.hybrid import Hybrid
from recsys_assets.domain.families.item_knn import ItemKNN
from recsys_assets.domain.families.popularity import Popularity, RecentPopularity
from recsys_assets.domain.item_side import ItemSide

# The family names records and settings accept, as a type.
Family = Literal["popularity", "recent_popularity", "item_knn", "ease", "als", "bpr", "content", "hybrid"]
FAMILY_CLASSES: dict[str, type[Recommender[Any]]] = {
    cls.family: cls for cls in (Popularity, RecentPopularity, ItemKNN, EASE, ALS, BPR, Content, Hybrid)
}
FAMILIES: tuple[Family, ...] = get_args(Family)

# The baselines every released model has to beat, fitted and scored through the same family code.
BASELINES: dict[str, tuple[Family, dict[str, Any]]] = {
    "popularity": ("popularity", {}),
    "item_knn": ("item_knn", {"similarity": "bm25", "neighbours": 100}),
}


def family_class(family: str) -> type[Recommender[Any]]:
    """The class of `family`.

    Raises:
        ValueError: no family has that name.
    """
    try:
        return FAMILY_CLASSES[family]
    except KeyError:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}") from None


def params_of(family: str, params: Mapping[str, Any] | FamilyParams | None = None) -> FamilyParams:
    """`params` validated against `family`'s parameter class (its defaults for what is missing)."""
    if isinstance(params, FamilyParams):
        return params
    return family_class(family).params_type.model_validate(dict(params or {}))


def _part(family: str, params: Mapping[str, Any]) -> Recommender[Any]:
    """An unfitted model of `family` that is a part of another (a hybrid's collaborative side): no item side."""
    return family_class(family).new(params_of(family, params), None, _part)


def new_model(
    family: str, params: Mapping[str, Any] | FamilyParams | None = None, items: ItemSide | None = None
) -> Recommender[Any]:
    """An unfitted model of `family` with `params` (validated against the family's parameter set).

    `items` gives every family its closed postings, which it will never recommend; its features go
    to the families that use them and are ignored by the rest.

    Raises:
        ValueError: `family` uses item features and none were given.
    """
    cls = family_class(family)
    if cls.uses_items and items is None:
        raise ValueError(f"the {family} family needs item features: build item_features from a catalogue first")
    model = cls.new(params_of(family, params), items, _part)
    return model if items is None else model.exclude_items(items.closed)


def restore_model(family: str, params: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Recommender[Any]:
    """A fitted model from the arrays `Recommender.arrays` gave (with its excluded items, when they were saved)."""
    loaded = dict(arrays)
    excluded = loaded.pop(EXCLUDED_ARRAY, None)
    return family_class(family).new(params_of(family, params), None, _part).restore(loaded).exclude_items(excluded)


def load_model(family: str, params: Mapping[str, Any], data: bytes) -> Recommender[Any]:
    """A model saved by `Recommender.to_bytes`, with the parameters it was trained with (and its excluded items)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return restore_model(family, params, {name: arrays[name] for name in arrays.files})
