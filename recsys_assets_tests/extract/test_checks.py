"""Every extract check's verdict, on rows and catalogues built by hand (fast: no Dagster run)."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pyarrow as pa

from recsys_assets.domain.events import EVENTS_SCHEMA
from recsys_assets.domain.items import measure_quality
from recsys_assets.domain.quality import baselines, split_extract
from recsys_assets.extract import checks
from recsys_assets_tests.support.catalogue import catalogue

DAYS = ["2026-03-01", "2026-03-02"]


def rows(*specs: tuple[str | None, float | None, int]) -> pa.Table:
    """Events of (user id, weight, hour after 2026-03-01 00:00 UTC); the item is always j1."""
    start = datetime(2026, 3, 1, tzinfo=UTC)
    return pa.table(
        {
            "user_id": [user for user, _, _ in specs],
            "item_id": ["j1"] * len(specs),
            "event_type": ["view"] * len(specs),
            "weight": [weight for _, weight, _ in specs],
            "event_ts": [start + timedelta(hours=hour) for _, _, hour in specs],
        },
        schema=EVENTS_SCHEMA,
    )


def test_null_ids_are_judged_on_each_day_against_the_limit():
    # Day 1: 1 of 4 rows has no user (25%); day 2: clean.
    split = split_extract(rows(("u", 1.0, 1), ("u", 1.0, 2), ("u", 1.0, 3), (None, 1.0, 4), ("u", 1.0, 30)), DAYS)
    first, second = split.days
    failed = checks.NO_NULL_IDS(first, limit=0.2)
    assert failed.check_name == "no_null_ids" and not failed.passed
    assert failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.description == "2026-03-01: 1 of 4 rows have null ids (25.00%; limit 20.00%)"
    assert {name: value.value for name, value in failed.metadata.items()} == {"rows": 1, "share": 0.25, "limit": 0.2}
    assert checks.NO_NULL_IDS(first, limit=0.25).passed
    assert checks.NO_NULL_IDS(second, limit=0.0).passed


def test_a_day_result_carries_its_partition_and_its_materialization():
    split = split_extract(rows(("u", 1.0, 1), (None, 1.0, 2)), DAYS)
    evaluation = checks.NO_NULL_IDS.on(DAYS[0], None, split.days[0], 0.2)
    assert evaluation.partition == DAYS[0] and evaluation.blocking and not evaluation.passed
    assert evaluation.description == "2026-03-01: 1 of 2 rows have null ids (50.00%; limit 20.00%)"


def test_negative_or_missing_weights_fail_their_check_alone():
    split = split_extract(rows(("u", -1.0, 1), ("u", None, 2), ("u", 1.0, 3)), DAYS)
    weights = checks.NON_NEGATIVE_WEIGHTS(split.days[0], limit=0.5)
    assert weights.check_name == "non_negative_weights" and not weights.passed
    assert "2 of 3 rows have negative or missing weights" in (weights.description or "")
    assert checks.NO_NULL_IDS(split.days[0], limit=0.0).passed


def test_rows_outside_the_partition_days_are_a_share_of_every_row_read():
    split = split_extract(rows(("u", 1.0, 1), ("u", 1.0, 2), ("u", 1.0, 50)), DAYS)  # hour 50 is 2026-03-03
    outside = checks.TIMESTAMPS_INSIDE_PARTITION(split, DAYS, limit=0.3)
    assert outside.check_name == "timestamps_inside_partition" and not outside.passed
    assert outside.description == (
        "1 of 3 rows read for 2026-03-01..2026-03-02 have timestamps outside it (33.33%; limit 30.00%)"
    )
    assert outside.metadata["share"].value == 0.333333
    assert checks.TIMESTAMPS_INSIDE_PARTITION(split, DAYS, limit=0.34).passed


def test_an_empty_or_collapsed_day_is_a_warning_against_the_days_before_it():
    warned = checks.ROW_COUNT_STABLE("2026-03-02", 30, 100.0, 0.5)
    assert warned.check_name == "row_count_stable" and not warned.passed
    assert warned.severity == dg.AssetCheckSeverity.WARN
    assert warned.description == (
        "2026-03-02: 30 rows, empty or collapsed (median of previous days 100; warns under 50% of it)"
    )
    assert warned.metadata["rows"].value == 30 and warned.metadata["median_previous_rows"].value == 100.0
    assert not checks.ROW_COUNT_STABLE("2026-03-03", 0, None, 0.5).passed
    assert checks.ROW_COUNT_STABLE("2026-03-01", 60, 100.0, 0.5).passed
    # Without history only an empty day is flagged.
    assert checks.ROW_COUNT_STABLE("2026-03-01", 1, None, 0.5).passed


def test_each_day_of_a_range_is_compared_with_the_days_before_it_range_days_included():
    found = baselines({"2026-02-28": 100}, {"2026-03-01": 80, "2026-03-02": 10, "2026-03-03": 90}, history_days=2)
    assert found == {"2026-03-01": 100, "2026-03-02": 90, "2026-03-03": 45}
    assert baselines({}, {"2026-03-01": 5}, history_days=7) == {"2026-03-01": None}


def test_catalogue_checks_count_duplicates_missing_text_and_inverted_windows():
    items = catalogue()
    assert all(
        check.passed
        for check in (
            checks.UNIQUE_ITEM_IDS(measure_quality(items)),
            checks.POSTINGS_HAVE_TEXT(measure_quality(items), 0.0),
            checks.CLOSED_AFTER_POSTED(measure_quality(items)),
        )
    )
    bad = pa.concat_tables([items, items.slice(0, 1)])  # job0 twice
    bad = bad.set_column(1, "title", pa.array(["", *bad["title"].to_pylist()[1:]]))
    bad = bad.set_column(2, "description", pa.array([None, *bad["description"].to_pylist()[1:]]))
    bad = bad.set_column(6, "closed_date", pa.array([None, date(2026, 2, 1), *[None] * 5], pa.date32()))
    quality = measure_quality(bad)
    unique = checks.UNIQUE_ITEM_IDS(quality)
    assert not unique.passed and unique.description == "1 duplicated and 0 null item ids in 7 rows"
    text = checks.POSTINGS_HAVE_TEXT(quality, 0.1)
    assert not text.passed and text.description == "1 of 7 postings have no text (14.29%; limit 10.00%)"
    assert checks.POSTINGS_HAVE_TEXT(quality, 0.15).passed
    window = checks.CLOSED_AFTER_POSTED(quality)
    assert not window.passed and window.description == "1 postings close before they were posted"


def test_every_spec_names_its_asset_and_the_daily_partitions():
    specs = [check.spec for check in checks.INTERACTIONS_CHECKS + checks.ITEMS_CHECKS]
    assert all(spec.partitions_def is not None and spec.description for spec in specs)
    assert [check.spec.blocking for check in checks.INTERACTIONS_CHECKS] == [True, True, True, False]
    assert {spec.asset_key.to_user_string() for spec in specs} == {"interactions", "items"}


def test_one_result_over_a_long_range_names_its_failed_days():
    split = split_extract(rows(("u", 1.0, 1), (None, 1.0, 2), ("u", 1.0, 30)), DAYS)
    verdicts = [(day.day, checks.null_ids(day, 0.2)) for day in split.days]
    result = checks.NO_NULL_IDS.over_days(verdicts)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert result.description == (
        "1 of 2 days fail (2026-03-01); first: 2026-03-01: 1 of 2 rows have null ids (50.00%; limit 20.00%)"
    )
    assert result.metadata["failed_days"].value == 1 and result.metadata["days"].value == 2
