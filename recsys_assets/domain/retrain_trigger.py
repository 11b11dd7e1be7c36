"""When to retrain besides the clock: the served lists' outcome slipping, or the traffic drifting away from the champion.

Two conditions, each with its reason in one line (the retrain run's trigger tag and its alert):

- **decay**: the mean hit rate of the champion's latest `window_days` measured days falls more than
  `max_decay` (relative) below its mean over the first `window_days` measured days after its release.
  The two windows never overlap, so the check speaks from the 14th measured day of a champion on.
- **drift**: on the latest day, the share of interactions on items the champion never saw exceeds
  `max_unseen_item_share`, or the share of active users it does not know exceeds `max_unknown_user_share`.

Defaults, from the synthetic job board (README "What triggers a retrain"): a champion of a steady market
(postings open one to two months) saw 2-24% of a day's interactions go to postings it never saw in its
first 10 days and about 45% after three weeks; on the day a new segment took half of the traffic
(`seed --drift-from`) that share jumped to 61%. Its hit rate lost about 25% from its first to its
second week without drift (postings turn over), so with the weekly retrain the decay check rarely
speaks, and a longer cron gets a retrain in the second week of a stale champion. Active users unknown
to the champion: 0% without drift (every user of the board is active from the start), 19.5% on the
drift day (newcomers bring half of the new segment's traffic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TriggerThresholds:
    max_decay: float = 0.10
    max_unseen_item_share: float = 0.40
    max_unknown_user_share: float = 0.10
    window_days: int = 7


@dataclass(frozen=True)
class DayOutcome:
    """One measured day of served lists: the day measured, the version that served, its hit rate."""

    day: str
    version: str
    hit_rate: float


def decay_reason(series: Sequence[DayOutcome], version: str, thresholds: TriggerThresholds) -> str | None:
    """Why `version`'s outcome has decayed beyond `max_decay`, or None (not enough days measured, or no decay)."""
    own = sorted((outcome for outcome in series if outcome.version == version), key=lambda outcome: outcome.day)
    window = thresholds.window_days
    if len(own) < 2 * window:
        return None
    baseline = sum(outcome.hit_rate for outcome in own[:window]) / window
    recent = sum(outcome.hit_rate for outcome in own[-window:]) / window
    if baseline <= 0 or recent >= baseline * (1 - thresholds.max_decay):
        return None
    return (
        f"outcome decay: the {window}-day mean hit rate of {version} up to {own[-1].day} is {recent:.4f}, "
        f"{1 - recent / baseline:.1%} below {baseline:.4f} in its first {window} days (max_decay "
        f"{thresholds.max_decay:.0%})"
    )


def drift_reason(
    day: str, unseen_item_share: float, unknown_user_share: float, version: str, thresholds: TriggerThresholds
) -> str | None:
    """Why the day's traffic has drifted away from `version`, or None."""
    if unseen_item_share > thresholds.max_unseen_item_share:
        return (
            f"drift: {unseen_item_share:.1%} of the interactions on {day} went to items {version} never saw "
            f"(threshold {thresholds.max_unseen_item_share:.0%})"
        )
    if unknown_user_share > thresholds.max_unknown_user_share:
        return (
            f"drift: {unknown_user_share:.1%} of the users active up to {day} are unknown to {version} "
            f"(threshold {thresholds.max_unknown_user_share:.0%})"
        )
    return None
