"""The lists the service returns, from a loaded bundle: the model's where it can rank, else the fallback.

No HTTP here: the routes call these, and so can a batch job or a test that must agree with them.
A user's list is `domain.served_lists.recommend_lists` for that one user: the function that writes the
daily `recommendations` table, so the service and the table agree for the same champion and day.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from recsys_assets.domain.served_lists import recommend_lists
from recsys_assets.domain.serving import Bundle

Source = Literal["model", "fallback"]


@dataclass(frozen=True)
class Recommendations:
    """A list and where it came from; `reason` says why the fallback answered."""

    items: list
    source: Source
    reason: str | None = None
    # History ids the bundle's catalogue does not hold (ignored).
    unknown_items: int = 0


def for_user(bundle: Bundle, user_id: Hashable, n: int, day: date | None = None) -> Recommendations:
    """A user's list: their rows of the daily `recommendations` table, computed by the same function.

    The model's list from their history in the bundle; the popularity fallback for a stranger or a
    user the model ranks nothing for.
    """
    rows = recommend_lists(bundle, [str(user_id)], n, day or datetime.now(UTC).date())
    items = rows["item_id"].to_pylist()
    if rows.num_rows and rows["source"][0].as_py() == "model":
        return Recommendations(items, "model")
    if not bundle.knows_user(user_id):
        return Recommendations(items, "fallback", "unknown user: the model was not trained on them")
    return Recommendations(items, "fallback", "the model ranks no item for this user")


def for_history(bundle: Bundle, history: Sequence[Hashable], n: int) -> Recommendations:
    """A session's or new user's list, folded in from `history` where the family can, never an item of it."""
    unknown = sum(1 for item in history if not bundle.knows_item(item))
    family = bundle.model.family
    if not bundle.model.folds_in:
        reason = f"the {family} family cannot fold in a history it was not trained on"
    elif unknown == len(history):
        reason = "no item of the history is in the model's catalogue" if history else "empty history"
    else:
        items = bundle.recommend(None, history, n)
        if items:
            return Recommendations(items, "model", unknown_items=unknown)
        reason = "the model ranks no item for this history"
    return Recommendations(bundle.popular(history, n), "fallback", reason, unknown_items=unknown)
