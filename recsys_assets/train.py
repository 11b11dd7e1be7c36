"""Training entrypoint: `python -m recsys_assets.train`, launched through Dagster Pipes.

Every launcher (local subprocess, Docker, Vertex AI custom job) runs this same module. It reads
a `TrainingRequest` from the Pipes extras, loads the training set by URI, searches and fits ALS,
writes the model next to a training report, and reports metadata back to the orchestrator.
"""

from __future__ import annotations

import os
import time

from dagster_pipes import PipesContext

from recsys_assets.domain import storage
from recsys_assets.domain.layout import ModelFiles, TrainingSetFiles
from recsys_assets.domain.recommenders import fit_als, model_to_bytes
from recsys_assets.domain.records import TrainingReport, TrainingRequest
from recsys_assets.domain.splitting import TrainingSet
from recsys_assets.domain.tuning import search_als
from recsys_assets.pipes.worker import open_training_pipes


def run(pipes: PipesContext) -> TrainingReport:
    """Train from the request in the Pipes extras and return the training report."""
    request = TrainingRequest.from_extras(pipes.extras)
    started = time.perf_counter()
    data = TrainingSet.load(TrainingSetFiles(request.training_set))
    pipes.log.info(
        f"loaded training set: {data.train.shape[0]:,} users x {data.train.shape[1]:,} items, "
        f"{data.train.nnz:,} interactions"
    )
    if data.train.nnz == 0:
        raise ValueError(f"training set at {request.training_set} is empty")
    candidates = list(request.search.candidates())
    if len(candidates) > 1:
        best, trials = search_als(data.fit, data.validation, request.search, pipes.log.info)
    else:
        best, trials = candidates[0], []
    model = fit_als(data.train, best, log=pipes.log.info)
    output = ModelFiles(request.output)
    storage.write_bytes(output.model, model_to_bytes(model))
    report = TrainingReport(
        hyperparameters=best,
        search=trials,
        training_seconds=round(time.perf_counter() - started, 3),
        users=int(data.train.shape[0]),
        items=int(data.train.shape[1]),
        interactions=int(data.train.nnz),
        host=os.uname().nodename,
    )
    storage.write_bytes(output.report, report.to_json())
    return report


def main() -> None:
    with open_training_pipes() as pipes:
        report = run(pipes)
        best_trial = report.best_trial()
        pipes.report_asset_materialization(
            metadata={
                "hyperparameters": {"raw_value": report.hyperparameters.model_dump(), "type": "json"},
                "search_trials": {"raw_value": len(report.search), "type": "int"},
                "best_validation": {
                    "raw_value": best_trial.model_dump(mode="json") if best_trial else {},
                    "type": "json",
                },
                "training_seconds": {"raw_value": report.training_seconds, "type": "float"},
                "interactions": {"raw_value": report.interactions, "type": "int"},
                "trained_on": {"raw_value": report.host, "type": "text"},
            }
        )


if __name__ == "__main__":
    main()
