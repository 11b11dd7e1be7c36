"""Training entrypoint: `python -m recsys_assets.train`, launched through Dagster Pipes.

Every launcher (local subprocess, Docker, Vertex AI custom job) runs this same module. It reads
its inputs from Pipes extras, loads the training set by URI, searches and fits ALS, writes the
factors next to a training report, and reports metadata back to the orchestrator.
"""

from __future__ import annotations

import os
import time

from dagster_pipes import PipesContext

from recsys_assets import storage
from recsys_assets.features.training_set import TrainingSet
from recsys_assets.pipes.worker import open_training_pipes
from recsys_assets.training.models import ALSParams, fit_als, model_to_bytes, search_als

MODEL_FILE = "model.npz"
REPORT_FILE = "training_report.json"


def run(pipes: PipesContext) -> dict:
    """Train from the extras of the Pipes session and return the training report."""
    training_set_uri = pipes.get_extra("training_set_uri")
    output_uri = pipes.get_extra("output_uri")
    base = ALSParams(**pipes.get_extra("als_params"))
    grid: dict[str, list] = pipes.get_extra("search_grid")
    k = int(pipes.get_extra("k"))

    started = time.perf_counter()
    data = TrainingSet.load(training_set_uri)
    pipes.log.info(
        f"loaded training set: {data.train.shape[0]:,} users x {data.train.shape[1]:,} items, "
        f"{data.train.nnz:,} interactions"
    )
    if data.train.nnz == 0:
        raise ValueError(f"training set at {training_set_uri} is empty")
    if any(len(values) > 1 for values in grid.values()):
        best, trials = search_als(data.fit, data.validation, grid, base, k, pipes.log.info)
    else:
        best, trials = ALSParams(**{**base.__dict__, **{n: v[0] for n, v in grid.items()}}), []
    model = fit_als(data.train, best, log=pipes.log.info)
    storage.write_bytes(storage.join(output_uri, MODEL_FILE), model_to_bytes(model))
    report = {
        "hyperparameters": best.__dict__,
        "search": trials,
        "training_seconds": round(time.perf_counter() - started, 3),
        "users": int(data.train.shape[0]),
        "items": int(data.train.shape[1]),
        "interactions": int(data.train.nnz),
        "host": os.uname().nodename,
    }
    storage.write_json(storage.join(output_uri, REPORT_FILE), report)
    return report


def main() -> None:
    with open_training_pipes() as pipes:
        report = run(pipes)
        best_trial = max(report["search"], key=lambda t: next(v for n, v in t.items() if n.startswith("ndcg")), default=None)
        pipes.report_asset_materialization(
            metadata={
                "hyperparameters": {"raw_value": report["hyperparameters"], "type": "json"},
                "search_trials": {"raw_value": len(report["search"]), "type": "int"},
                "best_validation": {"raw_value": best_trial or {}, "type": "json"},
                "training_seconds": {"raw_value": report["training_seconds"], "type": "float"},
                "interactions": {"raw_value": report["interactions"], "type": "int"},
                "trained_on": {"raw_value": report["host"], "type": "text"},
            }
        )


if __name__ == "__main__":
    main()
