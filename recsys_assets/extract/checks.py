"""The extracts' data-quality checks, each a spec and a pure verdict on the numbers the step measured.

Every check is yielded in-step by its asset, after the materialization, from the data the step holds
in memory: `NO_NULL_IDS(split, limit)` is the `AssetCheckResult`.
"""

from collections.abc import Sequence

from recsys_assets.asset_checks import VerdictCheck
from recsys_assets.domain.items import CatalogueQuality
from recsys_assets.domain.quality import DayShare, ExtractSplit, collapsed_days
from recsys_assets.domain.verdict import Verdict


def _worst_day(share: DayShare, label: str, limit: float) -> Verdict:
    """Whether the worst day's share of `label` rows stays under `limit`."""
    return Verdict(
        passed=share.worst_share <= limit,
        description=f"worst day {share.worst_day}: {share.worst_rows} of {share.worst_day_rows} rows have {label} "
        f"({share.worst_share:.2%}; limit {limit:.2%}); {share.rows} in the run",
        numbers={
            "rows": share.rows,
            "worst_day": share.worst_day,
            "worst_share": round(share.worst_share, 6),
            "limit": limit,
        },
    )


def null_ids(split: ExtractSplit, limit: float) -> Verdict:
    return _worst_day(split.null_ids, "null ids", limit)


def bad_weights(split: ExtractSplit, limit: float) -> Verdict:
    return _worst_day(split.bad_weights, "negative or missing weights", limit)


def outside_partition(split: ExtractSplit, keys: Sequence[str], limit: float) -> Verdict:
    """Whether the share of rows dated outside the partition days `keys` stays under `limit`."""
    share = split.share_outside
    outside = f"{split.rows_outside} of {split.rows_read} rows have timestamps outside {keys[0]}..{keys[-1]}"
    return Verdict(
        share <= limit,
        f"{outside} ({share:.2%}; limit {limit:.2%})",
        {"rows": split.rows_outside, "share": round(share, 6), "limit": limit},
    )


def row_counts(rows_per_day: dict[str, int], baseline: float | None, collapse_ratio: float) -> Verdict:
    """Whether no day is empty or under `collapse_ratio` x `baseline` (the previous days' median)."""
    collapsed = collapsed_days(rows_per_day, baseline, collapse_ratio)
    return Verdict(
        not collapsed,
        f"empty or collapsed days: {', '.join(collapsed)}" if collapsed else "row counts look normal",
        {"median_previous_rows": baseline or 0, "min_rows": min(rows_per_day.values(), default=0)},
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
    row_counts,
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
