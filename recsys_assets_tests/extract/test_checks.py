"""Every extract check's verdict, on rows and catalogues built by hand (fast: no Dagster run)."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pyarrow as pa

from recsys_assets.domain.events import EVENTS_SCHEMA
from recsys_assets.domain.items import measure_quality
from recsys_assets.domain.quality import chunks, combine_splits, split_extract
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


def test_null_ids_are_judged_by_the_worst_day_against_the_limit():
    # Day 1: 1 of 4 rows has no user (25%); day 2: clean.
    split = split_extract(rows(("u", 1.0, 1), ("u", 1.0, 2), ("u", 1.0, 3), (None, 1.0, 4), ("u", 1.0, 30)), DAYS)
    failed = checks.NO_NULL_IDS(split, limit=0.2)
    assert failed.check_name == "no_null_ids" and not failed.passed
    assert failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.description == "worst day 2026-03-01: 1 of 4 rows have null ids (25.00%; limit 20.00%); 1 in the run"
    assert {name: value.value for name, value in failed.metadata.items()} == {
        "rows": 1,
        "worst_day": "2026-03-01",
        "worst_share": 0.25,
        "limit": 0.2,
    }
    assert checks.NO_NULL_IDS(split, limit=0.25).passed


def test_negative_or_missing_weights_fail_their_check_alone():
    split = split_extract(rows(("u", -1.0, 1), ("u", None, 2), ("u", 1.0, 3)), DAYS)
    weights = checks.NON_NEGATIVE_WEIGHTS(split, limit=0.5)
    assert weights.check_name == "non_negative_weights" and not weights.passed
    assert "2 of 3 rows have negative or missing weights" in (weights.description or "")
    assert checks.NO_NULL_IDS(split, limit=0.0).passed


def test_rows_outside_the_partition_days_are_a_share_of_every_row_read():
    split = split_extract(rows(("u", 1.0, 1), ("u", 1.0, 2), ("u", 1.0, 50)), DAYS)  # hour 50 is 2026-03-03
    outside = checks.TIMESTAMPS_INSIDE_PARTITION(split, DAYS, limit=0.3)
    assert outside.check_name == "timestamps_inside_partition" and not outside.passed
    assert outside.description == ("1 of 3 rows have timestamps outside 2026-03-01..2026-03-02 (33.33%; limit 30.00%)")
    assert outside.metadata["share"].value == 0.333333
    assert checks.TIMESTAMPS_INSIDE_PARTITION(split, DAYS, limit=0.34).passed


def test_an_empty_or_collapsed_day_is_a_warning_that_names_it():
    warned = checks.ROW_COUNT_STABLE({"2026-03-01": 100, "2026-03-02": 30, "2026-03-03": 0}, 100.0, 0.5)
    assert warned.check_name == "row_count_stable" and not warned.passed
    assert warned.severity == dg.AssetCheckSeverity.WARN
    assert warned.description == "empty or collapsed days: 2026-03-02, 2026-03-03"
    assert warned.metadata["min_rows"].value == 0 and warned.metadata["median_previous_rows"].value == 100.0
    normal = checks.ROW_COUNT_STABLE({"2026-03-01": 60}, 100.0, 0.5)
    assert normal.passed and normal.description == "row counts look normal"
    # Without history only an empty day is flagged.
    assert checks.ROW_COUNT_STABLE({"2026-03-01": 1}, None, 0.5).passed


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


def test_a_range_extracted_a_few_days_at_a_time_is_judged_as_if_read_at_once():
    """`interactions` reads a long range in chunks (flat memory): the checks' numbers must not change."""
    days = ["2026-03-01", "2026-03-02", "2026-03-03"]
    table = rows(
        ("u", 1.0, 1),
        (None, 1.0, 2),  # day 1: 1 of 2 null
        ("u", -1.0, 25),
        ("u", 1.0, 26),
        ("u", 1.0, 27),  # day 2: 1 of 3 bad weights
        (None, 1.0, 49),
        ("u", None, 50),
        ("u", 1.0, 51),
        ("u", 1.0, 52),  # day 3: 1 of 4 null, 1 of 4 missing weight
    )
    whole = split_extract(table, days)
    parts = [split_extract(table.slice(0, 5), days[:2]), split_extract(table.slice(5), days[2:])]
    combined = combine_splits(parts)
    for field in ("rows_per_day", "null_ids", "bad_weights", "rows_outside", "rows_read"):
        assert getattr(combined, field) == getattr(whole, field), field
    assert combined.rejected.num_rows == whole.rejected.num_rows == 4 and combined.valid.num_rows == 0
    assert whole.bad_weights.worst_day == "2026-03-02" and whole.null_ids.worst_day == "2026-03-01"
    assert chunks(days, 2) == [days[:2], days[2:]]
