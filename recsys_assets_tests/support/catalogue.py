"""A tiny job catalogue with real text features: backend and frontend postings, some closing."""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from recsys_assets.domain.item_features import fit_features
from recsys_assets.domain.item_side import ItemSide, ItemSource
from recsys_assets.domain.items import ITEMS_SCHEMA, days_since_epoch

D = date(2026, 3, 1)


def catalogue(closed: dict[int, date] | None = None) -> pa.Table:
    """Six postings: 0-2 python backend jobs, 3-5 react frontend jobs; item 2 and 5 nobody has touched."""
    closed = closed or {}
    texts = ["python django backend"] * 3 + ["react typescript frontend"] * 3
    return pa.table(
        {
            "item_id": [f"job{i}" for i in range(6)],
            "title": ["backend engineer"] * 3 + ["frontend engineer"] * 3,
            "description": [f"{text} posting{i}" for i, text in enumerate(texts)],
            "category": ["backend"] * 3 + ["frontend"] * 3,
            "location": ["berlin", "paris", "berlin", "paris", "berlin", "paris"],
            "posted_date": [D] * 6,
            "closed_date": [closed.get(i) for i in range(6)],
        },
        schema=ITEMS_SCHEMA,
    )


def source_of(items: pa.Table) -> ItemSource:
    """The item_features asset's output for `items`: their fitted features and open windows."""
    _, features = fit_features(items)
    return ItemSource(
        features=features,
        item_ids=items["item_id"].combine_chunks(),
        posted=days_since_epoch(items["posted_date"]),
        closed=days_since_epoch(items["closed_date"]),
    )


def side_of(items: pa.Table, reference_day: float | None = None) -> ItemSide:
    """The item side of `items` as the training index, with the postings closed by `reference_day` excluded."""
    return source_of(items).side(items["item_id"].combine_chunks(), reference_day)
