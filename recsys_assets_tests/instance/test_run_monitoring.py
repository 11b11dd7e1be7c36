"""A run whose worker process was killed is failed by run monitoring, and dagster.yaml turns it on."""

import logging
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.events import EngineEventData
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from recsys_assets.instance.run_launcher import LocalRunLauncher

DAGSTER_YAML = Path(__file__).resolve().parents[2] / "dagster.yaml"


@pytest.mark.slow
def test_the_instance_monitors_runs_retries_dead_ones_and_serialises_partitions(tmp_path, monkeypatch):
    shutil.copy(DAGSTER_YAML, tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_launcher, LocalRunLauncher)
        assert instance.run_monitoring_enabled and instance.run_monitoring_max_runtime_seconds > 0
        assert instance.run_retries_enabled and not instance.run_retries_retry_on_asset_or_op_failure
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits


@pytest.mark.slow
def test_a_killed_run_worker_fails_its_run(tmp_path):
    config = yaml.safe_load(DAGSTER_YAML.read_text())
    overrides = {key: config[key] for key in ("run_launcher", "run_monitoring")}
    with dg.instance_for_test(overrides=overrides) as instance:
        job = dg.define_asset_job("work").resolve(asset_graph=dg.Definitions(assets=[]).resolve_asset_graph())
        run = instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTED)
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        instance.report_engine_event("run worker started", run, EngineEventData.in_process(worker.pid))
        assert instance.run_launcher.check_run_worker_health(run).status.value == "RUNNING"

        worker.send_signal(signal.SIGKILL)
        worker.wait()
        health = instance.run_launcher.check_run_worker_health(run)
        assert health.status.value == "FAILED" and f"process {worker.pid} is gone" in (health.msg or "")
        record = instance.get_run_record_by_id(run.run_id)
        assert record is not None
        monitor_started_run(instance, None, record, logging.getLogger("test"))  # type: ignore[arg-type]
        failed = instance.get_run_by_id(run.run_id)
        assert failed is not None and failed.status == dg.DagsterRunStatus.FAILURE
