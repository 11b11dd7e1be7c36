"""The extracts' data-quality checks, each a spec and a pure verdict on the numbers the step measured.

Every check is yielded in-step by its asset, after the materialization, from the data the step holds
in memory: `NO_NULL_IDS(day, limit)` is the `AssetCheckResult`, and `NO_NULL_IDS.on(day.day, target, day, limit)`
the result of one day of a range run.
"""

from collections.abc import Sequence

from recsys_assets.asset_checks import VerdictCheck
from recsys_assets.domain.items import CatalogueQuality
from recsys_assets.domain.quality import DayQuality, ExtractCounts, collapsed_days
from recsys_assets.domain.verdict import Verdict


def _day_share(day: DayQuality, malformed: int, label: str, limit: float) -> Verdict:
    """Whether the day's share of `label` rows stays under `limit`."""
    share = day.share(malformed)
    return Verdict(
        passed=share <= limit,
        description=f"{day.day}: {malformed} of {day.rows} rows have {label} ({share:.2%}; limit {limit:.2%})",
        numbers={"rows": malformed, "share": round(share, 6), "limit": limit},
    )


def null_ids(day: DayQuality, limit: float) -> Verdict:
    return _day_share(day, day.null_ids, "null ids", limit)


def bad_weights(day: DayQuality, limit: float) -> Verdict:
    return _day_share(day, day.bad_weights, "negative or missing weights", limit)


def outside_partition(split: ExtractCounts, keys: Sequence[str], limit: float) -> Verdict:
    """Whether the share of rows dated outside the partition days `keys` stays under `limit`.

    A row dated outside the days read belongs to none of them: the share is the run's, reported on each day.
    """
    share = split.share_outside
    outside = (
        f"{split.rows_outside} of {split.rows_read} rows read for {keys[0]}..{keys[-1]} have timestamps outside it"
    )
    return Verdict(
        share <= limit,
        f"{outside} ({share:.2%}; limit {limit:.2%})",
        {"rows": split.rows_outside, "share": round(share, 6), "limit": limit},
    )


def row_count(day: str, rows: int, baseline: float | None, collapse_ratio: float) -> Verdict:
    """Whether the day is neither empty nor under `collapse_ratio` x `baseline` (the previous days' median)."""
    collapsed = bool(collapsed_days({day: rows}, baseline, collapse_ratio))
    median = "no previous days" if baseline is None else f"median of previous days {baseline:,.0f}"
    return Verdict(
        not collapsed,
        f"{day}: {rows:,} rows, {'empty or collapsed' if collapsed else 'normal'} ({median}; "
        f"warns under {collapse_ratio:.0%} of it)",
        {"rows": rows, "median_previous_rows": round(baseline or 0, 1)},
    )


def item_ids(quality: CatalogueQuality) -> Verdict:
    duplicates, nulls = quality.duplicate_ids, quality.null_ids
    return Verdict(
        duplicates == 0 and nulls == 0,
        f"{duplicates} duplicated and {nulls} null item ids in {quality.rows} rows",
        {"duplicate_ids": duplicates, "null_ids": nulls},
    )


def posting_text(quality: CatalogueQuality, limit: float) -> Verdict:
    """Whether the share of postings with neither title nor description stays under `limit`."""
    share = quality.missing_text / max(quality.rows, 1)
    described = f"{quality.missing_text} of {quality.rows} postings have no text ({share:.2%}; limit {limit:.2%})"
    return Verdict(share <= limit, described, {"rows": quality.missing_text, "share": round(share, 6), "limit": limit})


def posting_windows(quality: CatalogueQuality) -> Verdict:
    inverted = quality.closed_before_posted
    return Verdict(inverted == 0, f"{inverted} postings close before they were posted", {"rows": inverted})


NO_NULL_IDS = VerdictCheck(
    "interactions", "no_null_ids", "Share of rows with a null user or item id stays under the limit.", null_ids
)
TIMESTAMPS_INSIDE_PARTITION = VerdictCheck(
    "interactions",
    "timestamps_inside_partition",
    "Share of rows whose timestamp falls outside the partition stays under the limit.",
    outside_partition,
)
NON_NEGATIVE_WEIGHTS = VerdictCheck(
    "interactions",
    "non_negative_weights",
    "Share of rows with a negative or missing weight stays under the limit.",
    bad_weights,
)
# A warning: a quiet day is worth a look, not a stopped retrain.
ROW_COUNT_STABLE = VerdictCheck(
    "interactions",
    "row_count_stable",
    "The day is neither empty nor collapsed against the previous days.",
    row_count,
    blocking=False,
)
INTERACTIONS_CHECKS = [NO_NULL_IDS, TIMESTAMPS_INSIDE_PARTITION, NON_NEGATIVE_WEIGHTS, ROW_COUNT_STABLE]

UNIQUE_ITEM_IDS = VerdictCheck("items", "unique_item_ids", "No item id occurs twice and none is null.", item_ids)
POSTINGS_HAVE_TEXT = VerdictCheck(
    "items",
    "postings_have_text",
    "Postings without title and description stay under the configured share.",
    posting_text,
)
CLOSED_AFTER_POSTED = VerdictCheck(
    "items", "closed_after_posted", "No posting closes before it was posted.", posting_windows
)
ITEMS_CHECKS = [UNIQUE_ITEM_IDS, POSTINGS_HAVE_TEXT, CLOSED_AFTER_POSTED]
