"""A range run of `interactions` reports per day: each day's own metadata and its own check results."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from dagster._core.execution.execution_result import ExecutionResult

from recsys_assets.assets import ASSETS
from recsys_assets.cli.pipeline import LOCATION_NAME, run_job
from recsys_assets.domain.events import EVENTS_SCHEMA
from recsys_assets.domain.synthetic import SyntheticSpec
from recsys_assets.extract.checks import INTERACTIONS_CHECKS
from recsys_assets.resources.warehouse import DuckDBWarehouse
from recsys_assets_tests.support.environment import REPO_ROOT, local_resources, seed

SPEC = SyntheticSpec(n_users=80, n_items=40, n_days=5, events_per_day=60, seed=5, end_date=date(2026, 3, 10))
DAYS = [(SPEC.end_date - timedelta(days=back)).isoformat() for back in range(SPEC.n_days - 1, -1, -1)]


def workspace_location() -> str:
    (entry,) = yaml.safe_load((REPO_ROOT / "workspace.yaml").read_text())["load_from"]
    return entry["python_module"]["location_name"]


def extract_range(resources: dict, instance: dg.DagsterInstance) -> ExecutionResult:
    """The range run `run` and `demo` start: the defined `interactions_job` over DAYS."""
    return run_job(
        "interactions_job",
        resources,
        instance,
        {},
        {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]},
    )


@pytest.mark.slow
def test_each_day_of_a_range_run_has_its_own_numbers_and_check_results(tmp_path, instance):
    resources = local_resources(tmp_path)
    rows_per_day = seed(resources, SPEC)
    # The third day loses its users: its check fails, the other days' pass.
    broken_day = date.fromisoformat(DAYS[2])
    start = datetime.combine(broken_day, datetime.min.time(), tzinfo=UTC)
    broken = pa.table(
        {
            "user_id": [None] * 30 + ["u1"] * 10,
            "item_id": ["j1"] * 40,
            "event_type": ["view"] * 40,
            "weight": [1.0] * 40,
            "event_ts": [start + timedelta(minutes=i) for i in range(40)],
        },
        schema=EVENTS_SCHEMA,
    )
    rows_per_day.update(resources["warehouse"].replace_days(broken))

    result = extract_range(resources, instance)
    assert not result.success  # the broken day's blocking check fails the step
    # A run of the location's job, so the UI's Overview timeline and the job's Runs tab list it.
    run = result.dagster_run
    assert run.job_name == "interactions_job" and run.remote_job_origin is not None
    assert run.remote_job_origin.location_name == LOCATION_NAME == workspace_location()
    assert run.remote_job_origin.repository_origin.repository_name == "__repository__"

    materializations = {m.partition: m for m in result.asset_materializations_for_node("interactions")}
    assert sorted(materializations) == DAYS
    for day, materialization in materializations.items():
        metadata = {name: value.value for name, value in materialization.metadata.items()}
        valid = 10 if day == DAYS[2] else rows_per_day[day]
        assert metadata["dagster/row_count"] == valid, day
        assert metadata["rows_rejected"] == (30 if day == DAYS[2] else 0)
        assert metadata["path"].endswith(f"interactions/{day}"), metadata["path"]
        assert sum(metadata["event_types"].values()) == valid
        assert metadata["source"] == resources["warehouse"].table_ref
        # A preview of that day's own rows, beside the column schema.
        assert metadata["sample"].startswith("| user_id | item_id | event_type | weight | event_ts |"), day
        assert day in metadata["sample"].splitlines()[2] and f"of {valid:,} rows" in metadata["sample"]

    evaluations = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    by_check_and_day = {(e.check_name, e.partition): e for e in evaluations}
    assert len(evaluations) == len(by_check_and_day) == len(INTERACTIONS_CHECKS) * len(DAYS)
    for (name, day), evaluation in by_check_and_day.items():
        assert evaluation.target_materialization_data is not None, (name, day)
        # The broken day also warns: 10 valid rows against a median of about 60 on the days before.
        broken = day == DAYS[2] and name in {"no_null_ids", "row_count_stable"}
        assert evaluation.passed == (not broken), (name, day, evaluation.description)
    failed = by_check_and_day[("no_null_ids", DAYS[2])]
    assert failed.description == f"{DAYS[2]}: 30 of 40 rows have null ids (75.00%; limit 1.00%)"

    # The step fails with the verdict and its numbers, the first thing the run's page shows.
    (failure,) = [e.step_failure_data for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failure.user_failure_data is not None
    assert failure.user_failure_data.description == f"blocking check failed: no_null_ids: {failed.description}"
    numbers = {name: value.value for name, value in failure.user_failure_data.metadata.items()}
    assert numbers == {"failed_checks": ["no_null_ids"], "rows": 30, "share": 0.75, "limit": 0.01}

    # The stored history agrees: each day's latest result is its own, and every day has a distinct time.
    records = instance.fetch_materializations(dg.AssetKey("interactions"), limit=100).records
    assert len({record.timestamp for record in records}) == len(DAYS)
    assert len({round(record.timestamp * 1000) for record in records}) == len(DAYS)  # the UI's milliseconds


@pytest.mark.slow
def test_a_single_day_run_reports_the_same_way(tmp_path, instance):
    resources = local_resources(tmp_path)
    rows_per_day = seed(resources, SPEC)
    result = dg.materialize(
        ASSETS, selection=["interactions"], resources=resources, instance=instance, partition_key=DAYS[-1]
    )
    (materialization,) = result.asset_materializations_for_node("interactions")
    assert materialization.partition == DAYS[-1]
    assert materialization.metadata["dagster/row_count"].value == rows_per_day[DAYS[-1]]
    evaluations = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    assert {(e.check_name, e.partition) for e in evaluations} == {(c.name, DAYS[-1]) for c in INTERACTIONS_CHECKS}
    assert all(e.passed for e in evaluations)


@pytest.mark.slow
def test_a_range_longer_than_a_quarter_gets_one_result_per_check_naming_its_failed_days(
    tmp_path, instance, monkeypatch
):
    # Five days stand in for a history import: results per day would cost 4 writes a day.
    monkeypatch.setattr("recsys_assets.extract.interactions.PER_DAY_RESULTS_MAX", 3)
    resources = local_resources(tmp_path)
    rows_per_day = seed(resources, SPEC)
    result = extract_range(resources, instance)
    assert result.success
    evaluations = {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    }
    assert set(evaluations) == {check.name for check in INTERACTIONS_CHECKS}
    nulls = evaluations["no_null_ids"]
    assert (
        nulls.passed
        and nulls.description
        == f"all 5 days pass; last: {DAYS[-1]}: 0 of {rows_per_day[DAYS[-1]]} rows have null ids (0.00%; limit 1.00%)"
    )
    assert nulls.metadata["days"].value == 5 and nulls.metadata["failed_days"].value == 0
    # Each day's materialization keeps its own numbers.
    materializations = {m.partition: m for m in result.asset_materializations_for_node("interactions")}
    assert {day: m.metadata["dagster/row_count"].value for day, m in materializations.items()} == {
        day: rows_per_day[day] for day in DAYS
    }


def _extract_in_reads(root, instance, rows_per_read: int, reads: list) -> tuple[ExecutionResult, dict]:
    """The range run over a seeded warehouse (two broken days) with `rows_per_read`; each read's bounds go to `reads`."""
    resources = local_resources(root)
    seed(resources, SPEC)
    for back, (user, weight) in ((2, (None, 1.0)), (4, ("u1", -1.0))):
        start = datetime.combine(date.fromisoformat(DAYS[back]), datetime.min.time(), tzinfo=UTC)
        broken = pa.table(
            {
                "user_id": [user] * 5 + ["u2"] * 30,
                "item_id": ["j1"] * 35,
                "event_type": ["view"] * 35,
                "weight": [weight] * 5 + [1.0] * 30,
                "event_ts": [start + timedelta(minutes=i) for i in range(35)],
            },
            schema=EVENTS_SCHEMA,
        )
        resources["warehouse"].replace_days(broken)
    before = len(reads)
    result = run_job(
        "interactions_job",
        resources,
        instance,
        {"ops": {"interactions": {"config": {"rows_per_read": rows_per_read}}}},
        {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]},
    )
    del reads[:before]
    return result, resources


def _what_the_run_recorded(result: ExecutionResult, root) -> dict:
    """Each day's metadata (paths relative to the run's root), check results and the step's failure."""
    days = {
        m.partition: {name: str(value.value).replace(str(root), "<root>") for name, value in m.metadata.items()}
        for m in result.asset_materializations_for_node("interactions")
    }
    checks = {
        (e.check_name, e.partition): (e.passed, e.description, {k: v.value for k, v in e.metadata.items()})
        for e in (
            event.asset_check_evaluation_data
            for event in result.all_events
            if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
    }
    failures = [e.step_failure_data.user_failure_data for e in result.all_events if e.is_step_failure]
    return {"days": days, "checks": checks, "failures": [f.description for f in failures if f is not None]}


def _files(root) -> dict[str, pa.Table]:
    return {str(path.relative_to(root)): pq.read_table(path) for path in sorted(root.rglob("interactions/*/*.parquet"))}


@pytest.mark.slow
def test_a_range_read_a_day_at_a_time_records_what_one_read_records(tmp_path, instance, monkeypatch):
    reads: list[tuple[datetime, datetime]] = []
    read_events = DuckDBWarehouse.read_events

    def recorded(self, start, end):
        reads.append((start, end))
        return read_events(self, start, end)

    monkeypatch.setattr(DuckDBWarehouse, "read_events", recorded)
    whole, _ = _extract_in_reads(tmp_path / "whole", instance, 1_000_000, reads)
    starts = [datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC) for day in DAYS]
    assert reads == [(starts[0], starts[-1] + timedelta(days=1))]
    reads.clear()
    daily, _ = _extract_in_reads(tmp_path / "daily", instance, 1, reads)
    assert reads == [(start, start + timedelta(days=1)) for start in starts]

    recorded_whole = _what_the_run_recorded(whole, tmp_path / "whole")
    assert recorded_whole == _what_the_run_recorded(daily, tmp_path / "daily")
    # What is compared is what the broken days must show: their own failed blocking checks, the rest passing.
    failed = {key for key, (passed, _, _) in recorded_whole["checks"].items() if not passed}
    assert {key for key in failed if key[0] != "row_count_stable"} == {
        ("no_null_ids", DAYS[2]),
        ("non_negative_weights", DAYS[4]),
    }
    assert len(recorded_whole["checks"]) == len(INTERACTIONS_CHECKS) * len(DAYS)
    assert recorded_whole["days"][DAYS[4]]["rejected_rows_of_run"].endswith(f"interactions/{DAYS[4]}/rejected.parquet")

    files = _files(tmp_path / "whole")
    assert files.keys() == _files(tmp_path / "daily").keys()
    assert all(table.equals(_files(tmp_path / "daily")[name]) for name, table in files.items())
    # Both broken days' rejected rows, from two reads, in the one file beside the range's last day.
    (rejected,) = [table for name, table in files.items() if name.endswith("rejected.parquet")]
    assert rejected.num_rows == 10 and rejected["item_id"].to_pylist() == ["j1"] * 10
