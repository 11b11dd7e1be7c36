"""The online service under load: known-user lists over loopback at a fixed rate and at saturation.

Run: `.venv/bin/python -m benchmarks.serving --spec 10m` (the 10 M-event job board of BENCHMARK_SPECS;
`--spec window` is a 20 k-event set for checking the benchmark itself in a minute).

For each family (ALS and item-kNN by default) a champion is trained on the whole data by the pipeline a
user runs (`python -m recsys_assets run`, one trial of that family, released with `models merge`) and
kept under `--workdir`, so later runs reuse it. Then, per family:

- **floor**: the same call the route makes (`service.lists.for_user`: the user's history from the bundle,
  `Bundle.recommend`), in-process, no HTTP, for the users the load uses, with BLAS pinned to one thread as
  the service pins it;
- the service, `python -m recsys_assets serve` in its own process, loaded by a second process:
  **fixed rate** (`--rate`, default 200 requests/s, open loop: each request has a scheduled time and its
  latency counts from then, so a stall is not hidden by the client waiting) and **saturation** (`wrk`
  with a Lua script picking a user per request when Debian's `wrk` is installed, else the same
  client closed-loop with `--connections` in flight);
- **CPU per request**: the service process's CPU time (`/proc/<pid>/stat`) over a load divided by the
  requests answered, beside the floor's CPU time per call: the ratio is HTTP's cost, and unlike latencies
  it hardly moves when other processes share the cores;
- **RSS** of the service with one model loaded, and its peak while it loads the other family's champion
  beside the first (the pointer moved during a fixed-rate load, whose latencies are reported too).

`--reload-lag` measures only the event loop's lag (a 1 ms ticker) while the champions load in a worker
thread, with Python's default GIL switch interval (5 ms) and the service's while loading (0.5 ms).

Every load is bounded in requests and seconds and goes to 127.0.0.1 only. The 1-minute load average is
recorded beside every figure: the machine is shared, so figures taken under load must be re-measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from benchmarks.pipeline_overhead import _rss_bytes

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # the only address any load here goes to
FAMILIES = {"als": "ALS", "item_knn": "item-kNN"}
# wrk's Lua script: a random path from the file per request, and the latency percentiles as JSON at the end.
WRK_SCRIPT = """
local paths = {}
init = function(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
end
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "seconds": %f, "errors": %d, "p50_ms": %f, "p90_ms": %f, "p99_ms": %f, "max_ms": %f}\\n',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3))
end
"""


@dataclass
class Load:
    """One load's outcome: requests answered, throughput and latency percentiles (milliseconds)."""

    mode: str
    requests: int
    errors: int
    seconds: float
    throughput: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    load_average: float


def load_average() -> float:
    return os.getloadavg()[0]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) `pid` has used so far: unlike latency, it hardly moves with the machine's load."""
    with open(f"/proc/{pid}/stat") as stat:
        # Fields after the parenthesised command name; utime and stime are the 14th and 15th of the line.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


def summary(mode: str, latencies: list[float], errors: int, seconds: float) -> Load:
    ordered = sorted(latencies)
    return Load(
        mode=mode,
        requests=len(latencies),
        errors=errors,
        seconds=seconds,
        throughput=len(latencies) / seconds if seconds else 0.0,
        p50_ms=percentile(ordered, 0.50) * 1e3,
        p90_ms=percentile(ordered, 0.90) * 1e3,
        p99_ms=percentile(ordered, 0.99) * 1e3,
        max_ms=(ordered[-1] if ordered else float("nan")) * 1e3,
        load_average=load_average(),
    )


# --- the load generator (runs in its own process: `python -m benchmarks.serving load ...`) -----------------


class Connection:
    """One keep-alive HTTP/1.1 connection to the service, speaking just enough of the protocol for GETs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection(HOST, port))

    async def get(self, path: str) -> int:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status


async def generate(port: int, paths: list[str], rate: float, seconds: float, connections: int) -> Load:
    """`rate` requests/s for `seconds` (open loop), or with `rate` 0 as many as `connections` in flight allow."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await Connection.open(port))
    latencies: list[float] = []
    errors = 0
    # perf_counter, not the loop's clock: uvloop's has millisecond resolution.
    clock = time.perf_counter
    rng = random.Random(0)

    async def send(scheduled: float) -> None:
        nonlocal errors
        connection = await pool.get()
        try:
            status = await connection.get(rng.choice(paths))
        finally:
            pool.put_nowait(connection)
        latencies.append(clock() - scheduled)
        errors += status != 200

    started = clock() + 0.05
    if rate > 0:
        total = int(rate * seconds)

        async def at(i: int) -> None:
            scheduled = started + i / rate
            await asyncio.sleep(max(0.0, scheduled - clock()))
            await send(scheduled)

        await asyncio.wait_for(asyncio.gather(*(at(i) for i in range(total))), timeout=seconds + 60)
        mode = f"fixed {rate:g}/s"
    else:
        deadline = started + seconds

        async def worker() -> None:
            while clock() < deadline:
                await send(clock())

        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(connections))), timeout=seconds + 60)
        mode = f"saturation ({connections} connections)"
    return summary(mode, latencies, errors, clock() - started)


def run_load(port: int, paths_file: Path, rate: float, seconds: float, connections: int) -> Load:
    """The load generator in a second process; its result comes back as JSON."""
    command = [sys.executable, "-m", "benchmarks.serving", "load", "--port", str(port), "--paths", str(paths_file)]
    command += ["--rate", str(rate), "--seconds", str(seconds), "--connections", str(connections)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=seconds + 120, check=True)
    return Load(**json.loads(done.stdout.strip().splitlines()[-1]))


def run_wrk(port: int, paths_file: Path, seconds: float, connections: int) -> Load:
    """Saturation with wrk (one thread, `connections` open), a random user per request."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s", "-s", script.name]
    command += [f"http://{HOST}:{port}", "--", str(paths_file)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True)
    finally:
        os.unlink(script.name)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Load(
        mode=f"saturation, wrk ({connections} connections)",
        requests=result["requests"],
        errors=result["errors"],
        seconds=result["seconds"],
        throughput=result["requests"] / result["seconds"],
        p50_ms=result["p50_ms"],
        p90_ms=result["p90_ms"],
        p99_ms=result["p99_ms"],
        max_ms=result["max_ms"],
        load_average=load_average(),
    )


# --- the champions: trained by the pipeline, kept under the workdir ---------------------------------------------


def environment(data: Path, spec_days: int, end: str) -> dict[str, str]:
    from datetime import date

    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OPENBLAS_NUM_THREADS": "1",
        "DAGSTER_HOME": str(data),
        "RECSYS_DATA_DIR": str(data),
        "RECSYS_PARTITIONS_START": (date.fromisoformat(end) - timedelta(days=spec_days - 1)).isoformat(),
        "RECSYS_TRAINING_WINDOW_DAYS": str(spec_days),
    }


def champions(spec_name: str, families: list[str], workdir: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    """The data folder, its environment, and a released version per family (trained once, then reused)."""
    from recsys_assets.domain.items import generate_catalogue
    from recsys_assets.domain.synthetic import BENCHMARK_SPECS, WINDOW_SPEC, generate_events
    from recsys_assets.resources.catalogue import DuckDBItemCatalogue
    from recsys_assets.resources.warehouse import DuckDBWarehouse

    spec = WINDOW_SPEC if spec_name == "window" else BENCHMARK_SPECS[spec_name]
    data = workdir / spec_name
    end = spec.end_date.isoformat()
    env = environment(data, spec.n_days, end)
    warehouse = data / "warehouse.duckdb"
    if not warehouse.exists():
        data.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "dagster.yaml", data / "dagster.yaml")
        started = time.perf_counter()
        events = generate_events(spec)
        DuckDBWarehouse(path=str(warehouse)).replace_days(events)
        DuckDBItemCatalogue(path=str(warehouse)).replace_items(generate_catalogue(spec))
        print(f"seeded {events.num_rows:,} events in {time.perf_counter() - started:.0f} s into {warehouse}")
        del events
    record = data / "champions.json"
    versions: dict[str, str] = json.loads(record.read_text()) if record.exists() else {}
    for family in families:
        if family in versions:
            continue
        ops = {
            # One trial of this family, retrained even when nothing changed, released whatever its metrics:
            # the benchmark needs a champion of each family, not the best model.
            "trained_model": {
                "config": {"families": [family], "trials_per_family": 1, "time_budget_seconds": 1e9, "force": True}
            },
            "model_evaluation": {"config": {"baseline_tolerance": 1}},
            "model_bundle": {"config": {"champion_tolerance": 1}},
        }
        config = data / f"run_{family}.json"
        config.write_text(json.dumps({"ops": ops}))
        started = time.perf_counter()
        command = [sys.executable, "-m", "recsys_assets", "run", "--partition", end, "--config", str(config)]
        with open(data / f"run_{family}.log", "w") as log:
            subprocess.run(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=True)
        line = next(
            line for line in (data / f"run_{family}.log").read_text().splitlines() if line.startswith("model bundle ")
        )
        version = line.split()[2].rstrip(":")
        merge = [sys.executable, "-m", "recsys_assets", "models", "merge", version]
        subprocess.run(merge, env=env, cwd=REPO, check=True, capture_output=True)
        print(f"{family}: champion {version} trained and released in {time.perf_counter() - started:.0f} s")
        versions[family] = version
        record.write_text(json.dumps(versions, indent=2))
    return data, env, versions


def point_champion(data: Path, version: str) -> None:
    """Make `version` the champion the service follows (the pointer a merged release writes)."""
    from recsys_assets.resources.model_store import LocalModelStore
    from recsys_assets.settings import SETTINGS

    LocalModelStore(root=str(data / "model_store")).write_champion(SETTINGS.model_name, version, reason="benchmark")


# --- the service ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def readyz(port: int) -> dict | None:
    import httpx

    try:
        response = httpx.get(f"http://{HOST}:{port}/readyz", timeout=5)
    except httpx.TransportError:
        return None
    return response.json() if response.status_code == 200 else None


@contextmanager
def service(env: dict[str, str], log: Path, reload_seconds: float) -> Iterator[tuple[int, int]]:
    """`python -m recsys_assets serve` on a free loopback port, in its own process group: (port, pid)."""
    port = free_port()
    command = [sys.executable, "-m", "recsys_assets", "serve", "--host", HOST, "--port", str(port)]
    command += ["--reload-seconds", str(reload_seconds)]
    with open(log, "w") as out:
        process = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield port, process.pid
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(15)


def wait_until(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise SystemExit(f"{what} not within {seconds:g} s")


class RssSampler:
    """The largest resident memory of a process, sampled every 50 ms while in use."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.05):
            self.peak = max(self.peak, _rss_bytes(self.pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


# --- the floor ---------------------------------------------------------------------------------------------------


def floor(data: Path, version: str, users: list[str], calls: int) -> dict[str, float]:
    """`for_user` in-process, as the route calls it, over `calls` of the load's users: mean and percentiles."""
    from recsys_assets.domain.families.topk import pin_blas_to_one_thread
    from recsys_assets.domain.items import as_of
    from recsys_assets.resources.catalogue import DuckDBItemCatalogue
    from recsys_assets.resources.model_store import LocalModelStore
    from recsys_assets.service.champion import load_champion_bundle
    from recsys_assets.service.lists import for_user
    from recsys_assets.settings import SETTINGS

    bundle = load_champion_bundle(LocalModelStore(root=str(data / "model_store")), SETTINGS.model_name, version)
    # As the service does once its champion is loaded: BLAS single-threaded for good, not limited per call.
    pin_blas_to_one_thread()
    from datetime import UTC, datetime

    today = datetime.now(UTC).date()
    bundle.exclude_closed(as_of(DuckDBItemCatalogue(path=str(data / "warehouse.duckdb")).read_items(today), today))
    rng = random.Random(0)
    chosen = [rng.choice(users) for _ in range(calls)]
    for user in chosen[:50]:
        for_user(bundle, user, 10)
    times = []
    cpu_started = time.thread_time()
    for user in chosen:
        started = time.perf_counter()
        for_user(bundle, user, 10)
        times.append(time.perf_counter() - started)
    cpu = time.thread_time() - cpu_started
    ordered = sorted(times)
    return {
        "cpu_ms_per_call": cpu / len(times) * 1e3,
        "mean_ms": sum(times) / len(times) * 1e3,
        "p50_ms": percentile(ordered, 0.5) * 1e3,
        "p99_ms": percentile(ordered, 0.99) * 1e3,
        "calls_per_second": len(times) / sum(times),
        "load_average": load_average(),
    }


def reload_lag(data: Path, versions: dict[str, str], switch_interval: float) -> dict[str, float]:
    """The event loop's lag while every champion loads in a worker thread, as the service loads a new one:
    a 1 ms ticker on the loop, with the GIL switch interval set to `switch_interval` during the loads."""
    from recsys_assets.resources.model_store import LocalModelStore
    from recsys_assets.service.champion import load_champion_bundle
    from recsys_assets.settings import SETTINGS

    store = LocalModelStore(root=str(data / "model_store"))

    async def measure() -> dict[str, float]:
        lags: list[float] = []
        loading = True

        async def ticker() -> None:
            while loading:
                started = time.perf_counter()
                await asyncio.sleep(0.001)
                lags.append(time.perf_counter() - started - 0.001)

        task = asyncio.create_task(ticker())
        default = sys.getswitchinterval()
        sys.setswitchinterval(switch_interval)
        started = time.perf_counter()
        try:
            for version in versions.values():
                bundle = await asyncio.to_thread(load_champion_bundle, store, SETTINGS.model_name, version)
                await asyncio.to_thread(bundle.popular, [], 1)
        finally:
            sys.setswitchinterval(default)
        seconds = time.perf_counter() - started
        loading = False
        await task
        ordered = sorted(lags)
        return {
            "switch_interval_ms": switch_interval * 1e3,
            "load_seconds": seconds,
            "ticks": len(ordered),
            "lag_p50_ms": percentile(ordered, 0.5) * 1e3,
            "lag_p99_ms": percentile(ordered, 0.99) * 1e3,
            "lag_max_ms": ordered[-1] * 1e3,
            "load_average": load_average(),
        }

    return asyncio.run(measure())


def user_paths(data: Path, version: str, count: int, out: Path) -> list[str]:
    """`count` random known users of the bundle, written to `out` as request paths (one a line)."""
    import pyarrow.parquet as pq

    from recsys_assets.settings import SETTINGS

    ids = pq.read_table(data / "model_store" / "models" / SETTINGS.model_name / version / "user_ids.parquet")
    users = ids["user_id"].to_pylist()
    chosen = random.Random(1).sample(users, min(count, len(users)))
    out.write_text("".join(f"/v1/users/{user}/recommendations?n=10\n" for user in chosen))
    return chosen


def bench(args: argparse.Namespace) -> None:
    families = args.families.split(",")
    data, env, versions = champions(args.spec, families, args.workdir)
    if args.prepare:
        return
    results: dict[str, dict] = {}
    for family in families:
        version = versions[family]
        other = next((versions[f] for f in families if f != family), None)
        paths_file = data / f"paths_{family}.txt"
        users = user_paths(data, version, 10_000, paths_file)
        row: dict = {"version": version, "floor": floor(data, version, users, args.floor_calls)}
        point_champion(data, version)
        with service(env, data / f"serve_{family}.log", reload_seconds=1.0) as (port, pid):
            started = time.perf_counter()
            wait_until(
                lambda port=port, version=version: (readyz(port) or {}).get("model_version") == version,
                900,
                f"the service serving {version}",
            )
            row["load_seconds"] = time.perf_counter() - started
            row["rss_one_model_gib"] = _rss_bytes(pid) / 2**30
            run_load(port, paths_file, args.rate, min(5.0, args.seconds), args.connections)  # warm-up, not recorded
            used = cpu_seconds(pid)
            row["fixed"] = asdict(run_load(port, paths_file, args.rate, args.seconds, args.connections))
            row["fixed"]["service_cpu_ms_per_request"] = (cpu_seconds(pid) - used) / row["fixed"]["requests"] * 1e3
            used = cpu_seconds(pid)
            saturation = (
                run_wrk(port, paths_file, args.seconds, args.connections)
                if shutil.which("wrk")
                else run_load(port, paths_file, 0, args.seconds, args.connections)
            )
            row["saturation"] = asdict(saturation)
            row["saturation"]["service_cpu_ms_per_request"] = (cpu_seconds(pid) - used) / saturation.requests * 1e3
            if other:
                # A promotion while serving at the fixed rate: both models are resident until the swap.
                with RssSampler(pid) as rss:
                    point_champion(data, other)
                    reload_load = run_load(port, paths_file, args.rate, args.seconds, args.connections)
                    wait_until(
                        lambda port=port, other=other: (readyz(port) or {}).get("model_version") == other,
                        900,
                        f"the service serving {other}",
                    )
                row["rss_during_reload_gib"] = rss.peak / 2**30
                row["fixed_during_reload"] = asdict(reload_load)
        results[family] = row
        print(json.dumps({family: row}, indent=2))
    (data / "serving_results.json").write_text(json.dumps(results, indent=2))
    print_table(args, results)


def print_table(args: argparse.Namespace, results: dict[str, dict]) -> None:
    print(f"\n{args.spec}: {args.seconds:g} s per load, {args.connections} connections\n")
    print(
        "| champion | floor p50 / p99 (ms) | fixed rate: achieved, p50 / p99 (ms) | saturation: req/s, p50 / p99 (ms) "
        "| saturation / floor | CPU per request: floor / service (ratio) | RSS one model | RSS during reload | load avg |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for family, row in results.items():
        fl, fx, sat = row["floor"], row["fixed"], row["saturation"]
        ratio = fl["calls_per_second"] / sat["throughput"]
        reload = f"{row['rss_during_reload_gib']:.2f} GiB" if "rss_during_reload_gib" in row else "—"
        averages = f"{fl['load_average']:.1f} / {fx['load_average']:.1f} / {sat['load_average']:.1f}"
        service_cpu = sat["service_cpu_ms_per_request"]
        cpu = f"{fl['cpu_ms_per_call']:.2f} / {service_cpu:.2f} ms ({service_cpu / fl['cpu_ms_per_call']:.2f}x)"
        print(
            f"| {FAMILIES.get(family, family)} | {fl['p50_ms']:.2f} / {fl['p99_ms']:.2f} "
            f"| {fx['throughput']:.0f}/s, {fx['p50_ms']:.1f} / {fx['p99_ms']:.1f} "
            f"| {sat['throughput']:.0f}, {sat['p50_ms']:.1f} / {sat['p99_ms']:.1f} "
            f"| floor {fl['calls_per_second']:.0f} calls/s = {ratio:.2f}x | {cpu} "
            f"| {row['rss_one_model_gib']:.2f} GiB | {reload} | {averages} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    load = sub.add_parser("load", help="internal: the load generator process")
    load.add_argument("--port", type=int, required=True)
    load.add_argument("--paths", type=Path, required=True)
    load.add_argument("--rate", type=float, default=200.0)
    load.add_argument("--seconds", type=float, default=20.0)
    load.add_argument("--connections", type=int, default=16)
    parser.add_argument("--spec", choices=("window", "1m", "10m"), default="window")
    parser.add_argument("--families", default="als,item_knn")
    parser.add_argument("--rate", type=float, default=200.0, help="the fixed rate, requests/s (default 200)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each load (default 20)")
    parser.add_argument("--connections", type=int, default=16, help="connections the load keeps open (default 16)")
    parser.add_argument("--floor-calls", type=int, default=5000)
    parser.add_argument("--prepare", action="store_true", help="only seed the data and train the champions")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/recsys-serving-bench"))
    parser.add_argument(
        "--reload-lag",
        action="store_true",
        help="only the event loop's lag while the champions load, with Python's and the service's switch interval",
    )
    args = parser.parse_args()
    if args.command == "load":
        if not (0 < args.seconds <= 600 and 0 <= args.rate <= 20_000 and 0 < args.connections <= 256):
            parser.error("a load is bounded: 0 < seconds <= 600, 0 <= rate <= 20000, 0 < connections <= 256")
        import uvloop

        result = uvloop.run(
            generate(args.port, args.paths.read_text().split(), args.rate, args.seconds, args.connections)
        )
        print(json.dumps(asdict(result)))
        return
    if args.reload_lag:
        from recsys_assets.service.champion import LOADING_SWITCH_INTERVAL

        data, _, versions = champions(args.spec, args.families.split(","), args.workdir)
        for _ in range(2):  # alternated, so both meet the same load
            for interval in (0.005, LOADING_SWITCH_INTERVAL):
                print(json.dumps(reload_lag(data, versions, interval)))
        return
    bench(args)


if __name__ == "__main__":
    main()
