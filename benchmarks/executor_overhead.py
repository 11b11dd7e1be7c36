"""In-process vs multiprocess executor for one retrain of the embedded graph.

Run: `DAGSTER_HOME=$(mktemp -d) .venv/bin/python benchmarks/executor_overhead.py`
(the multiprocess executor needs a persistent instance, hence DAGSTER_HOME).
"""

from __future__ import annotations

import os
import tempfile
import time

import dagster as dg

# Only once: reconstructing the job re-imports this file, and must find the same data folder.
if "RECSYS_DATA_DIR" not in os.environ:
    os.environ["RECSYS_DATA_DIR"] = tempfile.mkdtemp(prefix="recsys-bench-")

from recsys_assets.cli.pipeline import DOWNSTREAM, materialize_partition
from recsys_assets.definitions import ASSETS
from recsys_assets.domain.items import generate_catalogue
from recsys_assets.domain.synthetic import SMALL_SPEC, generate_events
from recsys_assets.resources import build_resources


def _job(executor: dg.ExecutorDefinition) -> dg.JobDefinition:
    defs = dg.Definitions(
        assets=ASSETS,
        resources=build_resources(),
        jobs=[dg.define_asset_job("bench", selection=DOWNSTREAM, executor_def=executor)],
    )
    return defs.resolve_job_def("bench")


def in_process_job() -> dg.JobDefinition:
    return _job(dg.in_process_executor)


def multiprocess_job() -> dg.JobDefinition:
    return _job(dg.multiprocess_executor)


def main() -> None:
    instance = dg.DagsterInstance.get()
    resources = build_resources()
    resources["item_catalogue"].replace_items(generate_catalogue(SMALL_SPEC))
    resources["warehouse"].replace_days(generate_events(SMALL_SPEC))
    key = SMALL_SPEC.end_date.isoformat()
    assert materialize_partition(key, resources, instance).success  # warm: extracts and caches in place
    for name, job in (("in_process", in_process_job), ("multiprocess", multiprocess_job)):
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            with dg.execute_job(dg.reconstructable(job), instance=instance, tags={"dagster/partition": key}) as result:
                assert result.success
            timings.append(time.perf_counter() - started)
        print(f"{name:13s} retrain of 6 assets: best {min(timings):.2f}s, runs {[round(t, 2) for t in timings]}")


if __name__ == "__main__":
    main()
