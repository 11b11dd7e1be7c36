"""Training entrypoint: `python -m recsys_assets.train`, launched through Dagster Pipes.

Every launcher (local subprocess, Docker, Vertex AI custom job) runs this same module. It reads
a `TrainingRequest` from the Pipes extras, loads the training set by URI, selects a model family
and its parameters (Optuna search on the configured protocol's validation split), refits the
selection on each protocol's training matrix, writes the models next to a training report, and
reports metadata back to the orchestrator.
"""

from __future__ import annotations

import os
import time
from typing import cast

from dagster_pipes import PipesContext

from recsys_assets.domain import storage
from recsys_assets.domain.content import ItemSide, ItemSource, reference_days
from recsys_assets.domain.families import new_model
from recsys_assets.domain.layout import ItemFiles, ModelFiles, TrainingSetFiles
from recsys_assets.domain.params import Protocol
from recsys_assets.domain.records import TrainingReport, TrainingRequest
from recsys_assets.domain.selection import select_model
from recsys_assets.domain.splitting import PROTOCOLS, TrainingSet
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
    settings = request.search
    source = ItemSource.load(ItemFiles(request.item_features)) if request.item_features else None
    if source is not None:
        pipes.log.info(f"item features: {source.features.shape[0]:,} postings x {source.features.shape[1]:,}")

    def items_at(protocol: str, stage: int) -> ItemSide | None:
        day = reference_days(protocol, data.counts.end_day, data.counts.cut_days)[stage]
        return None if source is None else source.side(data.item_ids, day)

    selection = select_model(
        data.protocol(settings.protocol), settings, pipes.log.info, items=items_at(settings.protocol, 0)
    )
    output = ModelFiles(request.output)
    # The selection is refitted on every protocol's training data, so each protocol scores the same choice.
    for protocol in PROTOCOLS:
        split = data.protocol(protocol)
        model = new_model(selection.best.family, selection.best.params, items=items_at(protocol, 1))
        model.fit(split.train, split.train_ages)
        storage.write_bytes(output.model(protocol), model.to_bytes())
    report = TrainingReport(
        model=selection.best,
        protocol=cast(Protocol, settings.protocol),  # validated by SelectionParams
        search=selection.trials,
        skipped=selection.skipped,
        search_seconds=selection.seconds,
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
                "family": {"raw_value": report.model.family, "type": "text"},
                "params": {"raw_value": report.model.params, "type": "json"},
                "search_trials": {"raw_value": len(report.search), "type": "int"},
                "best_validation_ndcg": {
                    "raw_value": best_trial.validation_ndcg if best_trial else 0.0,
                    "type": "float",
                },
                "trials": {"raw_value": report.trials_table(), "type": "md"},
                "search_seconds": {"raw_value": report.search_seconds, "type": "float"},
                "training_seconds": {"raw_value": report.training_seconds, "type": "float"},
                "interactions": {"raw_value": report.interactions, "type": "int"},
                "trained_on": {"raw_value": report.host, "type": "text"},
            }
        )


if __name__ == "__main__":
    main()
