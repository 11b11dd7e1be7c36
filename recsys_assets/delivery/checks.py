"""The served lists' check: no list holds an item its user already interacted with, nor a closed posting."""

from recsys_assets.asset_checks import VerdictCheck
from recsys_assets.domain.served_lists import lists_verdict

# Called with (lists, the active window's interactions, the day's closed posting ids).
NO_SEEN_OR_CLOSED_ITEMS = VerdictCheck(
    "recommendations",
    "no_seen_or_closed_items",
    "No served list holds an item its user interacted with in the active window, or a posting closed on the day.",
    lists_verdict,
)
