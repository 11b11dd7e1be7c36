"""The lists the service returns, from a loaded bundle: the model's where it can rank, else the fallback.

No HTTP here: the routes call these, and so can a batch job or a test that must agree with them.
A known user's list is exactly `Bundle.recommend(user_id, bundle.seen_item_ids(user_id), n)`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

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


def for_user(bundle: Bundle, user_id: Hashable, n: int) -> Recommendations:
    """A user's list: the model's from their history in the bundle, the popularity fallback for a stranger."""
    if not bundle.knows_user(user_id):
        return Recommendations(bundle.popular([], n), "fallback", "unknown user: the model was not trained on them")
    seen = bundle.seen_item_ids(user_id)
    items = bundle.recommend(user_id, seen, n)
    if items:
        return Recommendations(items, "model")
    return Recommendations(bundle.popular(seen, n), "fallback", "the model ranks no item for this user")


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
