"""The retention policy applied (`domain.retention` decides): by `python -m recsys_assets gc` and the weekly `gc_job`.

Lists the artefact store's run folders and the model store's versions, asks the Dagster instance which
runs are in progress and which wrote each day's latest materialization, asks the registry which versions
are released, proposed, the champion or the rollback target, and removes what the policy lets go.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from recsys_assets.domain import storage
from recsys_assets.domain.layout import RUN_ASSETS, RUNS_FOLDER, BundleFile, ModelStoreKeys
from recsys_assets.domain.registry import rollback_target
from recsys_assets.domain.retention import (
    MIN_AGE,
    BundleCandidate,
    RunFolder,
    bundles_to_prune,
    human_bytes,
    run_folders_to_remove,
    version_time,
)
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.model_store import STAGING_FOLDER, LocalModelStore, ModelStore
from recsys_assets.resources.registry import ModelRegistry
from recsys_assets.settings import process_settings


@dataclass
class GcOutcome:
    """What one pass removed (or, dry, would remove): one line per folder or bundle, and the bytes."""

    dry_run: bool
    lines: list[str] = field(default_factory=list)
    bytes_freed: int = 0

    def add(self, what: str, size: int) -> None:
        verb = "would remove" if self.dry_run else "removed"
        self.lines.append(f"{verb} {what} ({human_bytes(size)})")
        self.bytes_freed += size

    def summary(self) -> str:
        verb = "would free" if self.dry_run else "freed"
        return f"{len(self.lines)} item(s), {verb} {human_bytes(self.bytes_freed)}"


def run_folders(root_uri: str) -> list[RunFolder]:
    """Every `<asset>/<partition>/runs/<run_id>` folder under the artefact store, with its size and last change."""
    folders = []
    for asset in RUN_ASSETS:
        asset_uri = storage.join(root_uri, asset)
        grouped: dict[tuple[str, str], list[storage.StoredFile]] = defaultdict(list)
        for file in storage.list_files(asset_uri):
            parts = file.relative.split("/")
            if len(parts) >= 4 and parts[1] == RUNS_FOLDER:
                grouped[(parts[0], parts[2])].append(file)
        folders.extend(
            RunFolder(
                asset=asset,
                partition=partition,
                run_id=run_id,
                uri=storage.join(asset_uri, partition, RUNS_FOLDER, run_id),
                modified=max(file.modified for file in files),
                size=sum(file.size for file in files),
            )
            for (partition, run_id), files in grouped.items()
        )
    return folders


def _protected_runs(instance: dg.DagsterInstance, folders: list[RunFolder], keep_runs: int) -> set[str]:
    """Runs in progress, and the run of the latest materialization of each asset and day with folders to spare."""
    protected = {run.run_id for run in instance.get_runs(dg.RunsFilter(statuses=list(IN_PROGRESS_RUN_STATUSES)))}
    per_day: dict[tuple[str, str], int] = defaultdict(int)
    for folder in folders:
        per_day[(folder.asset, folder.partition)] += 1
    for (asset, partition), count in per_day.items():
        if count <= keep_runs:
            continue  # nothing of this day can go: no need to ask
        latest = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
        ).records
        protected.update(record.run_id for record in latest)
    return protected


def _bundle_runs(registry: ModelRegistry, versions: set[str]) -> set[str]:
    """The Dagster runs that wrote `versions` (their artefacts are what the bundles were built from)."""
    runs = set()
    for version in versions:
        manifest = registry.readable_manifest(version)
        if manifest is not None:
            runs.add(manifest.dagster.run_id)
    return runs


def collect(
    *,
    artifacts_root: str,
    model_store: ModelStore,
    model_name: str,
    instance: dg.DagsterInstance,
    keep_runs: int,
    keep_days: int,
    dry_run: bool,
    now: datetime | None = None,
) -> GcOutcome:
    """Apply the retention policy once: remove (or list, `dry_run`) old run folders and prunable bundles."""
    now = now or datetime.now(UTC)
    outcome = GcOutcome(dry_run)
    registry = ModelRegistry(model_store, model_name)
    statuses = registry.statuses()
    pointer = registry.champion_pointer()
    champion = registry.champion()
    target = rollback_target(statuses)
    kept_versions = {v for v, s in statuses.items() if s.state in ("proposed", "released")}
    kept_versions |= {s.version for s in (champion, target) if s is not None}
    if pointer is not None:
        kept_versions.add(pointer["version"])

    folders = run_folders(artifacts_root)
    protected = _protected_runs(instance, folders, keep_runs) | _bundle_runs(registry, kept_versions)
    for folder in run_folders_to_remove(folders, keep_runs, protected, now):
        if not dry_run:
            storage.delete_tree(folder.uri)
        outcome.add(folder.uri, folder.size)

    keys = ModelStoreKeys(model_name)
    candidates = []
    files_of: dict[str, list[str]] = {}
    for version in model_store.list_versions(model_name):
        sizes = model_store.object_sizes(keys.bundle_prefix(version))
        # The manifest and the state events stay: the registry's history of the version stays readable.
        files_of[version] = [
            key for key in sizes if key != keys.manifest(version) and not key.startswith(keys.events_prefix(version))
        ]
        status = statuses.get(version)
        since = datetime.fromisoformat(status.since) if status else version_time(version)
        candidates.append(
            BundleCandidate(
                version=version,
                state=status.state if status else None,
                since=since,
                removable_bytes=sum(sizes[key] for key in files_of[version]),
            )
        )
    if isinstance(model_store, LocalModelStore):
        _abandoned_staging(model_store, outcome, now)
    for candidate in bundles_to_prune(candidates, keep_days, kept_versions, now):
        if not dry_run:
            for key in files_of[candidate.version]:
                model_store.delete_object(key)
        state = candidate.state or "never proposed"
        outcome.add(
            f"bundle {model_name}/{candidate.version} ({state}; its {BundleFile.MANIFEST} and history stay)",
            candidate.removable_bytes,
        )
    return outcome


def _abandoned_staging(store: LocalModelStore, outcome: GcOutcome, now: datetime) -> None:
    """Bundles a killed process was assembling (`.staging/<version>-<id>`), untouched for a day."""
    staging = storage.join(store.root, STAGING_FOLDER)
    by_folder: dict[str, list[storage.StoredFile]] = defaultdict(list)
    for file in storage.list_files(staging):
        by_folder[file.relative.split("/", 1)[0]].append(file)
    for name, files in sorted(by_folder.items()):
        if now - max(file.modified for file in files) >= MIN_AGE:
            if not outcome.dry_run:
                storage.delete_tree(storage.join(staging, name))
            outcome.add(f"abandoned bundle upload {storage.join(staging, name)}", sum(file.size for file in files))


@dg.op
def apply_retention(context: dg.OpExecutionContext, artifacts: ArtifactStore, model_store: ModelStore) -> None:
    """Remove the run folders and bundle files the retention policy lets go (RECSYS_RETENTION_*)."""
    settings = process_settings()
    outcome = collect(
        artifacts_root=artifacts.root_uri,
        model_store=model_store,
        model_name=settings.model_name,
        instance=context.instance,
        keep_runs=settings.retention_runs,
        keep_days=settings.retention_days,
        dry_run=False,
    )
    for line in outcome.lines:
        context.log.info(line)
    context.log.info(outcome.summary())


@dg.job(description="Apply the retention policy: old run folders and unneeded bundle files (RECSYS_RETENTION_*).")
def gc_job() -> None:
    apply_retention()
