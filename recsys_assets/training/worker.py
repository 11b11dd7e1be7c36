"""Training entrypoint (`python -m recsys_assets.train`, the module `recsys_assets.train` runs), launched through Dagster Pipes.

Every launcher (local subprocess, Docker, Vertex AI custom job) runs this same module. It reads
a `TrainingRequest` from the Pipes extras, loads the training set by URI, selects a model family
and its parameters (Optuna search on the configured protocol's validation split), refits the
selection on each protocol's training matrix (the models the evaluation scores) and on the whole
window (the model that is served), writes the models next to a training report, and reports
metadata back to the orchestrator.

A deterministic failure (bad data or configuration: anything but a service error) is reported as a
Pipes custom message `{TRAINING_REFUSED: reason}` and the process exits cleanly, so the orchestrator
fails the step without retrying it; a service error propagates, fails the process, and is retried.
"""

from __future__ import annotations

import gc
import os
import time
from typing import cast

from dagster_pipes import PipesContext

from recsys_assets.domain import storage
from recsys_assets.domain.failures import classify
from recsys_assets.domain.families.registry import new_model
from recsys_assets.domain.item_side import ItemSide, ItemSource
from recsys_assets.domain.layout import ItemFiles, ModelFiles, TrainingSetFiles
from recsys_assets.domain.params import Protocol
from recsys_assets.domain.records import TrainingReport, TrainingRequest
from recsys_assets.domain.reports import ceiling_table, trials_table
from recsys_assets.domain.selection import holdout_ceiling, select_model
from recsys_assets.domain.splitting import PER_USER, TrainingSet
from recsys_assets.pipes.worker import TRAINING_REFUSED, open_training_pipes


def run(pipes: PipesContext) -> TrainingReport:
    """Train from the request in the Pipes extras and return the training report."""
    request = TrainingRequest.from_extras(pipes.extras)
    started = time.perf_counter()
    data = TrainingSet.load(TrainingSetFiles(request.training_set))
    # Every split shares one user and item index; the report counts the per-user split's training pairs.
    train = data.protocols[PER_USER].train
    pipes.log.info(
        f"loaded training set: {train.shape[0]:,} users x {train.shape[1]:,} items, {train.nnz:,} interactions"
    )
    if train.nnz == 0:
        raise ValueError(f"training set at {request.training_set} is empty")
    settings = request.search
    source = ItemSource.load(ItemFiles(request.item_features)) if request.item_features else None
    if source is not None:
        pipes.log.info(f"item features: {source.features.shape[0]:,} postings x {source.features.shape[1]:,}")

    def items_at(reference_day: float | None, age_day: float) -> ItemSide | None:
        # Postings closed by the protocol's cut are left out; their ages are taken where the training data ends.
        return None if source is None else source.side(data.item_ids, reference_day, age_day)

    searched = data.protocols[settings.protocol]
    selection = select_model(
        searched, settings, pipes.log.info, items=items_at(searched.fit_reference_day, searched.fit_end)
    )
    output = ModelFiles(request.output)
    # The selection is refitted on every protocol's training data, so each protocol scores the same choice.
    refits = {}
    for protocol, split in data.protocols.items():
        model = new_model(
            selection.best.family, selection.best.params, items=items_at(split.train_reference_day, split.train_end)
        )
        model.fit(split.train, split.train_ages)
        storage.write_bytes(output.model(protocol), model.to_bytes())
        refits[protocol] = model
    # The ceiling the selection may have missed: each family's best trial on each holdout, time-boxed.
    ceiling = holdout_ceiling(
        data.protocols,
        selection,
        refits,
        settings.k,
        settings.ceiling_seconds,
        lambda split: items_at(split.train_reference_day, split.train_end),
    )
    del refits
    # What is served: the same choice refitted on the whole window, so it knows the latest days too.
    # Postings closed by the end of the window are never served; later ones are scored from their features.
    served_items = None if source is None else source.side(data.item_ids, data.counts.end_day)
    served = new_model(selection.best.family, selection.best.params, items=served_items)
    served.fit(data.full, data.full_ages())
    storage.write_bytes(output.served_model, served.to_bytes())
    pipes.log.info(f"refitted {selection.best.family} on the whole window: {data.full.nnz:,} pairs")
    report = TrainingReport(
        model=selection.best,
        protocol=cast(Protocol, settings.protocol),  # validated by SelectionParams
        search=selection.trials,
        skipped=selection.skipped,
        search_seconds=selection.seconds,
        training_seconds=round(time.perf_counter() - started, 3),
        users=int(train.shape[0]),
        items=int(train.shape[1]),
        interactions=int(train.nnz),
        full_interactions=int(data.full.nnz),
        host=os.uname().nodename,
        selection_rule=selection.rule,
        tied=list(selection.tied),
        ceiling=ceiling,
    )
    storage.write_bytes(output.report, report.to_json())
    return report


def is_service_error(exc: BaseException) -> bool:
    """Whether `exc` (or an exception it was raised from) is transient (`domain.failures`), so a retry may succeed."""
    return classify(exc) == "transient"


def main() -> None:
    # As in the CLI (`cli` in recsys_assets/cli/__init__.py), for a process that runs this once and exits:
    # the garbage collector skips the imported modules during the run and everything at exit.
    gc.freeze()
    try:
        _main()
    finally:
        gc.freeze()


def _main() -> None:
    with open_training_pipes() as pipes:
        try:
            report = run(pipes)
        except Exception as exc:
            if is_service_error(exc):
                raise
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
            pipes.log.error(f"training refused: {reason}")
            pipes.report_custom_message({TRAINING_REFUSED: reason})
            return
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
                "trials": {"raw_value": trials_table(report), "type": "md"},
                "selected_over_best": {"raw_value": ceiling_table(report) or "not measured", "type": "md"},
                "selection_rule": {"raw_value": report.selection_rule, "type": "text"},
                **{
                    f"{protocol}_selected_over_best": {"raw_value": round(ratio[0] / ratio[2], 4), "type": "float"}
                    for protocol in report.ceiling
                    if (ratio := report.selected_over_best(protocol)) is not None and ratio[2] > 0
                },
                "search_seconds": {"raw_value": report.search_seconds, "type": "float"},
                "training_seconds": {"raw_value": report.training_seconds, "type": "float"},
                "interactions": {"raw_value": report.interactions, "type": "int"},
                "served_model_interactions": {"raw_value": report.full_interactions, "type": "int"},
                "trained_on": {"raw_value": report.host, "type": "text"},
            }
        )


if __name__ == "__main__":
    main()
