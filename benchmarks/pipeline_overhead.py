"""Orchestration overhead: the same retrain as a plain script and through `python -m recsys_assets run`.

Run: `.venv/bin/python -m benchmarks.pipeline_overhead --events-per-day 36000 --days 28` (1 M events).

The synthetic data is generated once into a warehouse under `--workdir`. The plain script then
calls the project's own functions with the same settings (read the window, build the training
set, search, refit per protocol and on the whole window, fit the baselines, score every protocol as
the evaluation step does, and with `--daily` the champion too; draw the plot, write the served model),
in one process. The pipeline runs the CLI a user runs, on a fresh Dagster instance (created, with
the project's dagster.yaml, before the timed run, as a deployment's instance exists before its runs)
and artefact folder each time, so every extract and step is really done. `--via-import` first loads
the events as a history file with `import-events` into an empty warehouse, timed on its own.
`--daily` times the scheduled daily retrain instead of a first run: the same fresh instance has
already extracted and retrained the day before (untimed), so the timed run extracts only the new
day and reads the rest of the window from the extracts, as every day after the first does. The
search has fixed trials and no effective time budget, so both sides do the same work. Peak RSS is the largest sum of the
resident memory of the process tree (the orchestrator and its training child at once), sampled
every 50 ms from /proc; beside it the orchestrator's own peak ("main") and the largest child's
(the training launcher's steps: the split, training, baselines, evaluation). Figures and the
commands are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


# model_evaluation's default: items posted fewer days ago count as new.
NEW_ITEM_DAYS = 7


@dataclass
class Measured:
    wall: float
    peak_rss_gib: float  # the whole process tree at its largest
    peak_main_gib: float  # the process started (the orchestrator, for the pipeline)
    peak_child_gib: float = 0.0  # the largest descendant alone (the training launcher's child, for the pipeline)


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # The command name may contain spaces: the fields after it start at the last ')'.
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def _tree_rss(root: int) -> tuple[int, int, int]:
    """Resident bytes of `root` with all its descendants, of `root` alone, and of its largest descendant."""
    tree, total, largest, todo = _children(), 0, 0, [root]
    while todo:
        pid = todo.pop()
        rss = _rss_bytes(pid)
        total += rss
        if pid != root:
            largest = max(largest, rss)
        todo.extend(tree.get(pid, []))
    return total, _rss_bytes(root), largest


def measure(command: list[str], env: dict[str, str], log: Path) -> Measured:
    """Wall time and peak process-tree RSS of `command`; its output goes to `log`."""
    peak = main = child = 0
    started = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak, main, child
            while not done.wait(0.05):
                tree, root, largest = _tree_rss(process.pid)
                peak, main, child = max(peak, tree), max(main, root), max(child, largest)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        status = process.wait()
        done.set()
        sampler.join()
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{' '.join(command)} exited with {status}; see {log}")
    return Measured(wall=wall, peak_rss_gib=peak / 2**30, peak_main_gib=main / 2**30, peak_child_gib=child / 2**30)


def plain(args: argparse.Namespace) -> None:
    """The retrain without orchestration: the project's own functions, called in a row in one process.

    The same work as the pipeline's steps: the training set, the selection, its refit on each protocol,
    the holdout ceiling and the served refit (the training entrypoint), every protocol's baselines, the
    model and baselines scored by `score_protocol` (cold items, new-item share, paired lifts), the
    champion (when given) scored by `score_champion`, the plot, and the served model written; the
    benchmark's synthetic warehouse has no catalogue, as in the pipeline's runs.
    """
    from datetime import UTC, datetime

    import numpy as np

    from recsys_assets.domain import serving, storage
    from recsys_assets.domain.bootstrap import paired_lift
    from recsys_assets.domain.champion import score_champion
    from recsys_assets.domain.evaluation import score_protocol
    from recsys_assets.domain.families.registry import BASELINES, new_model
    from recsys_assets.domain.metrics import headline
    from recsys_assets.domain.params import SelectionParams, SplitParams
    from recsys_assets.domain.reports import metrics_plot
    from recsys_assets.domain.selection import holdout_ceiling, select_model
    from recsys_assets.domain.splitting import build_training_set
    from recsys_assets.resources.warehouse import DuckDBWarehouse

    started = time.perf_counter()

    def phase(text: str) -> None:
        # Each phase with its end time, to set beside the pipeline's step timeline.
        print(f"[{time.perf_counter() - started:7.1f} s] {text}", flush=True)

    settings = SelectionParams.model_validate(json.loads(args.selection))
    end = date.fromisoformat(args.partition)
    start = end - timedelta(days=args.window_days - 1)
    warehouse = DuckDBWarehouse(path=args.warehouse)
    day = datetime.min.time()
    events = warehouse.read_events(
        datetime.combine(start, day, tzinfo=UTC), datetime.combine(end + timedelta(days=1), day, tzinfo=UTC)
    )
    phase(f"read {events.num_rows:,} events")
    data = build_training_set(events, SplitParams())
    del events
    phase(f"training set: {data.full.nnz:,} pairs")
    selection = select_model(data.protocols[settings.protocol], settings, print)
    phase("selection")
    # As the training entrypoint: the selection refitted on each protocol's training data, the holdout
    # ceiling (each family's best trial on each holdout, time-boxed), then the served refit.
    refits = {
        protocol: new_model(selection.best.family, selection.best.params).fit(split.train, split.train_ages)
        for protocol, split in data.protocols.items()
    }
    holdout_ceiling(data.protocols, selection, refits, settings.k, settings.ceiling_seconds, lambda _: None)
    phase("refitted per protocol, holdout ceiling")
    served = new_model(selection.best.family, selection.best.params).fit(data.full, data.full_ages())
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "model.npz").write_bytes(served.to_bytes())
    phase("served model refitted and written")
    no_catalogue = np.full(len(data.item_ids), np.nan)
    results, model_by_user = {}, {}
    for protocol, split in data.protocols.items():
        baselines = {
            name: new_model(family, params).fit(split.train, split.train_ages)
            for name, (family, params) in BASELINES.items()
        }
        results[protocol], model_by_user[protocol] = score_protocol(
            split, refits[protocol], baselines, k=settings.k, posted=no_catalogue, new_item_days=NEW_ITEM_DAYS
        )
        phase(
            f"{protocol}: baselines fitted, scored; model ndcg@{settings.k} {results[protocol].model[f'ndcg@{settings.k}']:.4f}"
        )
    if args.champion:
        gated = data.protocols[settings.protocol]

        def read(name: str) -> bytes:
            return storage.read_bytes(storage.join(args.champion, name))

        bundle = serving.open_bundle(args.champion, read, settings.protocol)
        champion, by_user = score_champion(bundle, gated.train, gated.holdout, data.user_ids, data.item_ids, settings.k)
        lift = paired_lift(model_by_user[settings.protocol], by_user)
        phase(
            f"champion {champion.version}: ndcg@{settings.k} {champion.metrics[f'ndcg@{settings.k}']:.4f}, {lift.text()}"
        )
    gated_result = results[settings.protocol]
    series = {"model": headline(gated_result.model, settings.k)}
    series |= {name: headline(metrics, settings.k) for name, metrics in gated_result.baselines.items()}
    (output / "metrics.png").write_bytes(metrics_plot(series))
    phase("plot drawn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=30_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=28, help="days of data generated (and the training window)")
    parser.add_argument("--window-days", type=int, help="training window (default: --days)")
    parser.add_argument("--events-per-day", type=int, default=36_000)
    parser.add_argument("--families", default="popularity,item_knn,als")
    parser.add_argument("--trials-per-family", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/recsys-bench"))
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side; the best is reported")
    parser.add_argument("--only", choices=("plain", "pipeline"), help="run one side only")
    parser.add_argument(
        "--rerun", action="store_true", help="then run the pipeline again on the same instance and data (skipped)"
    )
    parser.add_argument(
        "--daily",
        action="store_true",
        help="time the scheduled daily retrain: the pipeline's instance already extracted and retrained the day"
        " before (untimed), the timed run extracts the new day only (one more day of data is generated)",
    )
    parser.add_argument(
        "--streamed",
        action="store_true",
        help="generate and load the data a few days at a time (`generate_event_blocks`: the same board, another"
        " draw of its events), for data sets too large to draw in memory at once (100 M events)",
    )
    parser.add_argument("--generate-only", action="store_true", help="generate the data set, then stop")
    parser.add_argument(
        "--via-import",
        action="store_true",
        help="the pipeline side first loads the events with `import-events` (a history file) into its own warehouse",
    )
    # Internal: the plain side runs in its own process, so its peak RSS is its own.
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warehouse", help=argparse.SUPPRESS)
    parser.add_argument("--partition", help=argparse.SUPPRESS)
    parser.add_argument("--selection", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--champion", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.window_days = args.window_days or args.days
    if args.daily and args.via_import:
        parser.error("--daily and --via-import do not combine: the import fills an empty warehouse")
    # --daily: the day before the window's first day exists too, for the untimed previous retrain.
    generated_days = args.days + 1 if args.daily else args.days
    if args.plain:
        plain(args)
        return

    end = date(2026, 6, 30)
    partition = end.isoformat()
    selection = {
        "families": args.families.split(","),
        "trials_per_family": args.trials_per_family,
        # No effective budget: the search does the same trials on both sides, whatever the load.
        "time_budget_seconds": 1e9,
    }
    drawn = "-streamed" if args.streamed else ""
    data = args.workdir / f"data-{args.users}u-{args.items}i-{generated_days}d-{args.events_per_day}{drawn}"
    warehouse = data / "warehouse.duckdb"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OPENBLAS_NUM_THREADS": "1",
        "RECSYS_PARTITIONS_START": (end - timedelta(days=generated_days - 1)).isoformat(),
        "RECSYS_TRAINING_WINDOW_DAYS": str(args.window_days),
        "RECSYS_DUCKDB_PATH": str(warehouse),
    }
    if not warehouse.exists():
        data.mkdir(parents=True, exist_ok=True)
        from recsys_assets.domain.synthetic import SyntheticSpec, generate_event_blocks, generate_events
        from recsys_assets.resources.warehouse import DuckDBWarehouse

        started = time.perf_counter()
        spec = SyntheticSpec(
            n_users=args.users,
            n_items=args.items,
            n_days=generated_days,
            events_per_day=args.events_per_day,
            end_date=end,
        )
        # Written to a temporary name first: an interrupted generation leaves no warehouse to be reused.
        partial = data / "warehouse.partial.duckdb"
        partial.unlink(missing_ok=True)
        store, rows = DuckDBWarehouse(path=str(partial)), 0
        # Streamed: 5 days (5 M events at 1 M a day) held at once; otherwise the whole set (~16 GiB at 100 M).
        for events in generate_event_blocks(spec, 5) if args.streamed else [generate_events(spec)]:
            rows += sum(store.replace_days(events).values())
            del events
        partial.rename(warehouse)
        print(f"generated {rows:,} events in {time.perf_counter() - started:.1f} s into {warehouse}")
    if args.generate_only:
        return

    plain_command = [sys.executable, "-m", "benchmarks.pipeline_overhead", "--plain", "--warehouse", str(warehouse)]
    plain_command += ["--partition", partition, "--window-days", str(args.window_days)]
    plain_command += ["--selection", json.dumps(selection), "--output", str(data / "plain")]
    # --daily: the champion the pipeline's timed run scores (its previous day's release), copied here
    # by the pipeline's first run, which then goes first so the plain side scores the same bundle.
    champion = data / "champion"
    if args.daily:
        plain_command += ["--champion", str(champion)]
    config = data / "run_config.json"  # JSON is YAML
    # The gate at -100% lets every run reach the bundle and release steps, whichever family wins.
    ops = {"trained_model": {"config": selection}, "model_evaluation": {"config": {"baseline_tolerance": 1}}}
    config.write_text(json.dumps({"ops": ops}))
    pipeline_command = [sys.executable, "-m", "recsys_assets", "run", "--partition", partition]
    pipeline_command += ["--config", str(config)]

    def pipeline_run() -> Measured:
        from recsys_assets.domain.layout import ModelStoreKeys
        from recsys_assets.resources.model_store import LocalModelStore
        from recsys_assets.settings import SETTINGS

        # A fresh instance and artefact folder: every extract and step is really done.
        run_dir = data / "pipeline"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir()
        # The project's own local instance settings (its event log storage included).
        shutil.copy(REPO / "dagster.yaml", run_dir / "dagster.yaml")
        run_env = {**env, "DAGSTER_HOME": str(run_dir), "RECSYS_DATA_DIR": str(run_dir / "data")}
        # A deployment's instance exists before its runs: its SQLite databases are created (~0.6 s)
        # outside the timed run, which then does every step on an instance that has none of them.
        subprocess.run([sys.executable, "-c", "import dagster; dagster.DagsterInstance.get()"], env=run_env, check=True)
        if args.daily:
            # Yesterday's scheduled retrain, untimed: today's run then extracts only the new day.
            yesterday = (end - timedelta(days=1)).isoformat()
            previous = [sys.executable, "-m", "recsys_assets", "run", "--partition", yesterday, "--config", str(config)]
            with open(data / "previous_day.log", "w") as out:
                subprocess.run(previous, env=run_env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, check=True)
            # Its release merged, as a reviewer does every day: the timed run then scores it as the champion.
            store = LocalModelStore(root=str(run_dir / "data" / "model_store"))
            proposals = sorted((Path(store.root) / "releases" / SETTINGS.model_name).iterdir())
            if not proposals:
                raise SystemExit(f"the previous day's run proposed no release; see {data / 'previous_day.log'}")
            merge = [sys.executable, "-m", "recsys_assets", "models", "merge", proposals[-1].name]
            subprocess.run(merge, env=run_env, stdout=subprocess.DEVNULL, cwd=REPO, check=True)
            pointer = store.read_champion(SETTINGS.model_name)
            assert pointer is not None, "a merged release promotes its version"
            shutil.rmtree(champion, ignore_errors=True)
            keys = ModelStoreKeys(SETTINGS.model_name)
            shutil.copytree(Path(store.root) / keys.bundle_prefix(pointer["version"]), champion)
        if args.via_import:
            # The generated events as a user's history file, imported into an empty warehouse.
            history = data / "history.parquet"
            if not history.exists():
                import duckdb

                with duckdb.connect(str(warehouse), read_only=True) as con:
                    columns = "user_id, item_id, event_ts AS timestamp, event_type, weight"
                    con.execute(f"COPY (SELECT {columns} FROM events) TO '{history}' (FORMAT parquet)")
            run_env["RECSYS_DUCKDB_PATH"] = str(run_dir / "warehouse.duckdb")
            import_command = [sys.executable, "-m", "recsys_assets", "import-events", str(history)]
            runs["import-events"].append(measure(import_command, run_env, data / "import.log"))
        return measure(pipeline_command, run_env, data / "pipeline.log")

    runs: dict[str, list[Measured]] = {"plain script": [], "python -m recsys_assets run": []}
    if args.via_import:
        runs["import-events"] = []
    # Alternated, so a change in the shared machine's load hits both sides alike; the best run counts.
    sides = {
        "plain": ("plain script", lambda: measure(plain_command, env, data / "plain.log")),
        "pipeline": ("python -m recsys_assets run", pipeline_run),
    }
    order = [args.only] if args.only else ["pipeline", "plain"] if args.daily else ["plain", "pipeline"]
    if args.daily and args.only == "plain" and not champion.exists():
        raise SystemExit(f"--daily --only plain scores the champion a pipeline run copied to {champion}: run one first")
    for _ in range(args.repeat):
        for side in order:
            name, run = sides[side]
            runs[name].append(run())
    results = {name: min(measured, key=lambda m: m.wall) for name, measured in runs.items() if measured}
    if args.rerun and args.only != "plain":
        # Same instance, same data: nothing to extract, and the retrain is skipped.
        run_env = {**env, "DAGSTER_HOME": str(data / "pipeline"), "RECSYS_DATA_DIR": str(data / "pipeline" / "data")}
        if args.via_import:
            run_env["RECSYS_DUCKDB_PATH"] = str(data / "pipeline" / "warehouse.duckdb")
        runs["rerun, unchanged data"] = [measure(pipeline_command, run_env, data / "rerun.log")]
        results["rerun, unchanged data"] = runs["rerun, unchanged data"][0]

    print(f"\n{args.window_days}-day window, data in {data}")
    print(f"{'side':32s} {'wall s':>8s} {'peak RSS GiB':>13s} {'main process GiB':>17s} {'child GiB':>10s}  all walls")
    for name, m in results.items():
        walls = ", ".join(f"{r.wall:.1f}" for r in runs[name])
        print(
            f"{name:32s} {m.wall:8.1f} {m.peak_rss_gib:13.2f} {m.peak_main_gib:17.2f} {m.peak_child_gib:10.2f}  {walls}"
        )
    if "import-events" in results:
        imported, piped = results["import-events"], results["python -m recsys_assets run"]
        print(f"{'import-events + run':32s} {imported.wall + piped.wall:8.1f}")
    if "plain script" in results and "python -m recsys_assets run" in results:
        base, piped = results["plain script"], results["python -m recsys_assets run"]
        print(f"{'ratio':32s} {piped.wall / base.wall:8.2f} {piped.peak_rss_gib / base.peak_rss_gib:13.2f}")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
