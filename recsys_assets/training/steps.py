"""The training entrypoint's steps besides training: everything that loads the training set's matrices.

The orchestrator launches each of them through the training launcher (local subprocess, Docker,
Vertex AI), exactly as it launches training, so no orchestrator step holds the matrices and its
memory stays flat in the data's size:

- `split`: the warehouse's labelled pairs -> the training set's matrices, id maps, history and summary;
- `fit_baselines`: the baselines on each protocol's training matrix;
- `evaluate`: every model and baseline scored under every protocol, and the champion (staged by the
  orchestrator into the artefact store, verified here against its manifest).

No Dagster here: this runs in the training image.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from recsys_assets.domain import serving, storage
from recsys_assets.domain.bootstrap import paired_lift
from recsys_assets.domain.champion import score_champion, shared_items
from recsys_assets.domain.evaluation import score_protocol
from recsys_assets.domain.families.base import binary
from recsys_assets.domain.families.registry import BASELINES, load_model, new_model
from recsys_assets.domain.item_side import ItemSource
from recsys_assets.domain.layout import BaselineFiles, BundleFile, ItemFiles, ModelFiles, TrainingSetFiles
from recsys_assets.domain.pair_pipeline import PairsFiles, load_pairs
from recsys_assets.domain.records import (
    BaselinesRequest,
    EvaluationRequest,
    EvaluationResult,
    Manifest,
    ProtocolResult,
    SplitRequest,
    TrainingReport,
    TrainingSetSummary,
)
from recsys_assets.domain.reports import comparison_table, metrics_plot
from recsys_assets.domain.splitting import PROTOCOLS, TrainingSet, split_problem, training_set_from_pairs

Log = Callable[[str], None]


def split(request: SplitRequest, log: Log) -> str | None:
    """Build the training set's matrices from the warehouse's pairs and write them beside the pairs.

    Returns why the split leaves nothing to train or score on (nothing is written then), or None.
    """
    files = TrainingSetFiles(request.training_set)
    data = training_set_from_pairs(load_pairs(PairsFiles(files.folder), PROTOCOLS), request.params)
    problem = split_problem(data.counts, request.params)
    if problem is not None:
        return problem
    summary = TrainingSetSummary(
        **data.counts.model_dump(),
        window=request.window,
        partitions=request.partitions,
        content_hash=request.content_hash,
    )
    payloads = data.to_files(files)
    # Ones as bytes: 5 bytes a pair instead of 8 (34 instead of 55 MB at 10 M events).
    payloads[files.history] = storage.sparse_to_bytes(binary(data.full).astype(np.uint8))
    for uri, payload in payloads.items():
        storage.write_bytes(uri, payload)
    storage.write_bytes(files.summary, summary.to_json())  # last: marks a complete set
    log(f"split {summary.full_pairs:,} pairs: {summary.users:,} users x {summary.items:,} items")
    return None


def fit_baselines(request: BaselinesRequest, log: Log) -> None:
    """Fit every baseline on each protocol's training matrix and write them at `request.output`."""
    data = TrainingSet.load(TrainingSetFiles(request.training_set))
    files = BaselineFiles(request.output)
    for protocol, split_ in data.protocols.items():
        for name, (family, params) in BASELINES.items():
            model = new_model(family, params).fit(split_.train, split_.train_ages)
            storage.write_bytes(files.model(f"{name}_{protocol}"), model.to_bytes())
    log(f"fitted {', '.join(BASELINES)} on {', '.join(data.protocols)}")


def _champion(folder: str, protocol: str) -> serving.Bundle:
    """The staged champion bundle, verified against its manifest (the model its `protocol` evaluation scored)."""

    def read(name: str) -> bytes:
        return storage.read_bytes(storage.join(folder, name))

    manifest = Manifest.from_json(read(BundleFile.MANIFEST))
    evaluated = BundleFile.evaluated(protocol) in manifest.files
    return serving.open_bundle(folder, read, protocol if evaluated else None)


def evaluate(request: EvaluationRequest, log: Log) -> EvaluationResult:
    """Score the model and each baseline under every protocol, and the champion; write and return the result."""
    k = request.k
    data = TrainingSet.load(TrainingSetFiles(request.training_set))
    trained = ModelFiles(request.trained_model)
    report = TrainingReport.from_json(storage.read_bytes(trained.report))
    baselines = BaselineFiles(request.baselines)
    source = ItemSource.load(ItemFiles(request.item_features)) if request.item_features else None
    posted = np.full(len(data.item_ids), np.nan) if source is None else source.side(data.item_ids, None).posted
    protocols: dict[str, ProtocolResult] = {}
    closed_at: dict[str, np.ndarray | None] = {}
    model_by_user: dict[str, np.ndarray] = {}
    for protocol, split_ in data.protocols.items():
        # Every model, baselines included, is scored without the postings closed at the protocol's cut.
        closed_at[protocol] = None if source is None else source.side(data.item_ids, split_.train_reference_day).closed
        result, by_user = score_protocol(
            split_,
            load_model(report.model.family, report.model.params, storage.read_bytes(trained.model(protocol))),
            {
                name: load_model(family, params, storage.read_bytes(baselines.model(f"{name}_{protocol}")))
                for name, (family, params) in BASELINES.items()
            },
            k=k,
            posted=posted,
            new_item_days=request.new_item_days,
            closed=closed_at[protocol],
        )
        protocols[protocol], model_by_user[protocol] = result, by_user
        scores = {"model": result.model, **result.baselines}
        log(f"{protocol}: " + ", ".join(f"{name} ndcg@{k} {m[f'ndcg@{k}']:.4f}" for name, m in scores.items()))
    gated = protocols[report.protocol]
    gated_split = data.protocols[report.protocol]

    unavailable, bundle = request.champion_unavailable, None
    if request.champion is not None:
        try:
            bundle = _champion(request.champion, report.protocol)
        except (
            FileNotFoundError,
            serving.BundleIntegrityError,
            KeyError,
            TypeError,
            ValueError,
            pa.ArrowInvalid,
        ) as exc:
            unavailable = f"the champion cannot be read ({type(exc).__name__}: {exc})"
            log(f"comparison with the champion impossible: {unavailable}")
    champion, shared, champion_lift = None, None, None
    if bundle is not None:
        champion, champion_by_user = score_champion(
            bundle,
            gated_split.train,
            gated_split.holdout,
            data.user_ids,
            data.item_ids,
            k,
            excluded=closed_at[report.protocol],
        )
        shared = shared_items(bundle.item_ids, data.item_ids)
        champion_lift = paired_lift(model_by_user[report.protocol], champion_by_user)
        log(
            f"champion {champion.version} ({report.protocol}): ndcg@{k} {champion.metrics[f'ndcg@{k}']:.4f}, "
            f"model's lift {champion_lift.text()} over {champion_lift.users:,} users"
        )
        if shared == 0:
            log(
                f"champion {champion.version} shares no items with this training set: scored as no overlap "
                "(every metric 0)"
            )
    evaluation = EvaluationResult(
        k=k,
        protocol=report.protocol,
        model=gated.model,
        baselines=gated.baselines,
        champion=champion,
        holdout=gated.holdout,
        protocols=protocols,
        training_set=data.summary,
        champion_shared_items=shared,
        champion_unavailable=unavailable,
        champion_lift=champion_lift,
        same_as=request.same_as,
    )
    storage.write_bytes(request.output, evaluation.to_json())
    if request.plot is not None:
        storage.write_bytes(request.plot, metrics_plot(comparison_table(evaluation)))
    return evaluation
