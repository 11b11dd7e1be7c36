"""What the retention policy removes: old per-run artefact folders and the files of bundles nobody can need.

Pure decisions on listings; `recsys_assets.retention` lists the stores, asks the Dagster instance and the
registry what is protected, and deletes. The policy (settings `RECSYS_RETENTION_RUNS`, `RECSYS_RETENTION_DAYS`):

- per asset and day, the artefact folders of the last `keep_runs` runs stay (newest first by their files'
  times), and so does every folder of a protected run (in progress, the latest materialization of its
  asset and day, or the run that wrote a released, proposed or champion bundle) and every folder
  written to in the last day (a run the instance does not know of may still be writing);
- a bundle's files (all but its manifest and state events, so the registry's history stays readable)
  go once the version is rejected, superseded, rolled back or was never proposed, and nothing about it
  happened for `keep_days` days; never the champion, the version the pointer names, a proposed or
  released one, nor the rollback target (the version a rollback would bring back).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# A run folder touched this recently may belong to a run still writing, whatever the instance says.
MIN_AGE = timedelta(days=1)
# Versions in these states can be pruned once old enough (never-proposed versions too: state None).
PRUNABLE_STATES = frozenset({"rejected", "superseded", "rolled_back", None})


@dataclass(frozen=True)
class RunFolder:
    """One asset's artefacts of one partition and run: `<root>/<asset>/<partition>/runs/<run_id>`."""

    asset: str
    partition: str
    run_id: str
    uri: str
    modified: datetime
    size: int


@dataclass(frozen=True)
class BundleCandidate:
    """A version in the model store: its state (None: never proposed), when that state began, its file sizes."""

    version: str
    state: str | None
    since: datetime | None
    removable_bytes: int


def run_folders_to_remove(
    folders: Iterable[RunFolder], keep_runs: int, protected_runs: Collection[str], now: datetime
) -> list[RunFolder]:
    """The folders beyond the last `keep_runs` of their asset and day that no protected run owns."""
    by_day: dict[tuple[str, str], list[RunFolder]] = defaultdict(list)
    for folder in folders:
        by_day[(folder.asset, folder.partition)].append(folder)
    removed = []
    for day_folders in by_day.values():
        newest_first = sorted(day_folders, key=lambda f: f.modified, reverse=True)
        removed.extend(
            folder
            for folder in newest_first[keep_runs:]
            if folder.run_id not in protected_runs and now - folder.modified >= MIN_AGE
        )
    return sorted(removed, key=lambda f: (f.asset, f.partition, f.run_id))


def bundles_to_prune(
    candidates: Iterable[BundleCandidate], keep_days: int, protected_versions: Collection[str], now: datetime
) -> list[BundleCandidate]:
    """The versions whose files can go: prunable state, unchanged for `keep_days`, not protected, files left."""
    cutoff = now - timedelta(days=keep_days)
    return [
        candidate
        for candidate in sorted(candidates, key=lambda c: c.version)
        if candidate.state in PRUNABLE_STATES
        and candidate.version not in protected_versions
        and candidate.since is not None
        and candidate.since <= cutoff
        and candidate.removable_bytes > 0
    ]


def version_time(version: str) -> datetime | None:
    """When a version named by `bundle.new_version` (`20261128T040000Z-<run>`) was created; None for others."""
    try:
        return datetime.strptime(version[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def human_bytes(size: int) -> str:
    """`1.2 MB`-style size for a person."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"
