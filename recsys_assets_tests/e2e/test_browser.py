"""A new user's first session, clicked through the real UI in Chromium.

`dagster dev` runs on a free loopback port with a fresh instance and data folder; the data is seeded
with the CLI (which also sets where the partitions start). Then, by clicking: the lineage shows every
asset, "Materialize all" for the latest partition succeeds, `model_evaluation` and `model_bundle`
show their metrics, the model card with its plot loaded and the checks of that run, and the partition
sensor ticks once switched on. Each step's screenshot is kept under the test's folder when it fails.

After `demo`, `models merge` and a run whose gate fails, all through the CLI as the README says: the
Overview timeline lists the CLI's runs, every check of every extracted day passed (screenshot kept in
test-artifacts/browser/), each day has its own row count, the blocked run's page opens on the
`beats_baselines` verdict with its numbers, and `model_release` shows the new champion without a run.

Needs Debian's chromium at /usr/bin/chromium (`make browser` installs it) and Playwright for Python.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import requests

from recsys_assets.resources import build_resources
from recsys_assets_tests.support.environment import ASSET_KEYS
from recsys_assets_tests.support.standins.bigquery import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SECOND = 1000  # Playwright timeouts are in milliseconds
# Generous: the machine running the suite may be busy, and the first page load compiles a lot of JS.
PAGE_TIMEOUT = 90 * SECOND
# Outside pytest's rotating temporary folders, so CI can upload them and they survive other test runs.
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"


def stop_group(process: subprocess.Popen, grace_seconds: float = 10) -> None:
    """Stop `process` and everything it started: SIGTERM to its group, SIGKILL if it is still there."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace_seconds)
            # The leader is gone; children (webserver, daemon, code server) may not be yet.
            os.killpg(process.pid, 0)
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return
        time.sleep(1)
    process.wait(timeout=grace_seconds)


def fresh_environment(tmp_path: Path) -> dict[str, str]:
    """A fresh DAGSTER_HOME (with the project's dagster.yaml) and data folder under `tmp_path`."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    # No RECSYS_PARTITIONS_START: the partitions start where the seeded data does, as on a fresh clone.
    env = {key: value for key, value in os.environ.items() if key != "RECSYS_PARTITIONS_START"}
    env.update(RECSYS_DATA_DIR=str(tmp_path / "data"), DAGSTER_HOME=str(home))
    return env


def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m recsys_assets ARGS` as a user types it; output (both streams) in `.stdout`."""
    done = subprocess.run(
        [sys.executable, "-m", "recsys_assets", *args],
        cwd=REPO_ROOT,
        env=env,
        timeout=900,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if check and done.returncode != 0:
        # The command's own last lines say why (a crash shows its signal as a negative status).
        pytest.fail(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}")
    return done


@contextmanager
def running_dagster_dev(tmp_path: Path, env: dict[str, str], request) -> Iterator[str]:
    """`dagster dev` on a free loopback port for `env`; its log is kept as an artefact when the test fails."""
    port = free_port()
    with open(tmp_path / "dagster_dev.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the whole tree can be stopped
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/server_info", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            assert process.poll() is None, f"dagster dev exited during start-up; see {tmp_path / 'dagster_dev.log'}"
            time.sleep(1)
        else:
            pytest.fail("dagster dev did not answer within 180 s")
        yield base
    finally:
        stop_group(process)
        if failed_in(request):
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(tmp_path / "dagster_dev.log", ARTIFACTS / f"{request.node.name}-dagster_dev.log")


@pytest.fixture
def dagster_dev(tmp_path: Path, request) -> Iterator[str]:
    """`dagster dev` with a fresh DAGSTER_HOME and data folder seeded through the CLI."""
    env = fresh_environment(tmp_path)
    # The default 28-day window filled: "Materialize all" runs with the default 7-day global cut.
    cli(env, "seed", "--users", "600", "--items", "300", "--days", "28", "--events-per-day", "900")
    with running_dagster_dev(tmp_path, env, request) as base:
        yield base


def failed_in(request) -> bool:
    """Whether the test (or its set-up) failed; the report is kept on the item by conftest's hook."""
    return any(getattr(getattr(request.node, f"rep_{when}", None), "failed", False) for when in ("setup", "call"))


class Steps:
    """Screenshots of each step, kept as test artefacts when a step fails."""

    def __init__(self, page, folder: Path) -> None:
        self.page, self.folder, self.taken = page, folder, []

    def shot(self, name: str) -> None:
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)


@pytest.fixture
def browser_page(request):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    shots = ARTIFACTS / request.node.name
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    sync_api.expect.set_options(timeout=PAGE_TIMEOUT)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(PAGE_TIMEOUT)
        steps = Steps(page, shots)
        try:
            yield page, steps
        finally:
            if failed_in(request):
                steps.shot("at-failure")
                print(f"screenshots of each step: {shots}")
            else:
                shutil.rmtree(shots)
            browser.close()


def dismiss_community_modal(page) -> None:
    """A fresh instance greets the first visit with a newsletter dialog; a new user clicks Skip."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(timeout=10 * SECOND)
    except Exception:  # Playwright's TimeoutError: the dialog did not show
        return
    skip.click()


def test_a_new_users_first_session(dagster_dev, browser_page):
    page, steps = browser_page
    expect = pytest.importorskip("playwright.sync_api").expect

    # The lineage shows every asset.
    page.goto(f"{dagster_dev}/asset-groups")
    dismiss_community_modal(page)
    for key in ASSET_KEYS:
        expect(page.get_by_text(key, exact=True).first).to_be_visible()
    steps.shot("lineage")

    # "Materialize all" for the latest partition: one run, and it succeeds.
    page.get_by_role("button", name="Materialize all").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Latest", exact=True).click()
    expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
    steps.shot("materialize-all-latest")
    dialog.get_by_role("button", name="Launch 1 run").click()
    expect(dialog).to_be_hidden()
    page.goto(f"{dagster_dev}/runs")
    partition = page.get_by_text(re.compile(r"^partition: \d{4}-\d\d-\d\d$")).first.inner_text().split(": ")[1]
    run_link = page.get_by_role("link", name="View", exact=True).first.get_attribute("href")
    assert run_link and run_link.startswith("/runs/")
    run_id = run_link.rsplit("/", 1)[-1]
    page.goto(f"{dagster_dev}{run_link}")
    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=300 * SECOND)
    steps.shot("run-succeeded")

    # model_evaluation shows the metrics, rounded, and its check result from this run's partition.
    page.goto(f"{dagster_dev}/assets/model_evaluation")
    expect(page.locator("tr", has_text="ndcg@10").first).to_contain_text("0.")
    metrics = page.locator("tr", has_text="metrics").first
    expect(metrics).to_contain_text("popularity")
    expect(metrics).to_contain_text("item_knn")
    steps.shot("model-evaluation")
    check_attached_to_run(page, dagster_dev, "model_evaluation", "beats_baselines", partition, run_id, steps)

    # model_bundle: the model card with its plot loaded, and the champion check of this run.
    page.goto(f"{dagster_dev}/assets/model_bundle")
    page.locator("tr", has_text="model_card").get_by_text("[Show Markdown]").click()
    card = page.get_by_role("dialog")
    expect(card).to_contain_text("Model card: jobs-als")
    plot = card.locator("img").first
    expect(plot).to_be_visible()
    assert plot.evaluate("img => img.complete && img.naturalWidth > 0"), "the model card's plot did not load"
    steps.shot("model-card")
    page.keyboard.press("Escape")
    check_attached_to_run(page, dagster_dev, "model_bundle", "not_worse_than_champion", partition, run_id, steps)

    # The partition sensor, switched on, ticks; every day is already extracted, so it requests nothing.
    page.goto(f"{dagster_dev}/locations/recsys_assets/sensors/new_interaction_partitions")
    expect(page.get_by_text("Sensor has never run")).to_be_visible()
    page.locator("label:has(input[type=checkbox])").first.click()
    expect(page.locator("input[type=checkbox]").first).to_be_checked()
    expect(page.get_by_text("Sensor has never run")).to_be_hidden(timeout=180 * SECOND)
    expect(page.get_by_text("0 runs requested").first).to_be_visible()
    expect(page.get_by_text('"through"').first).to_be_visible()  # the cursor is a watermark, not a list of days
    steps.shot("sensor-ticked")


def check_attached_to_run(page, base: str, asset: str, check: str, partition: str, run_id: str, steps: Steps) -> None:
    """The asset's Checks tab shows `check` passed for `partition`, with its numbers, from run `run_id`."""
    page.goto(f"{base}/assets/{asset}?view=checks")
    page.get_by_text(check, exact=True).first.click()
    expect = pytest.importorskip("playwright.sync_api").expect
    expect(page.get_by_text("Latest execution", exact=True)).to_be_visible()
    expect(page.get_by_text("Passed", exact=True).first).to_be_visible()
    expect(page.get_by_text(partition, exact=True).first).to_be_visible()
    expect(page.get_by_text("challenger", exact=True).first).to_be_visible()  # numeric metadata, plotted
    steps.shot(f"{asset}-checks")
    # The check's execution history links the run that produced it.
    page.get_by_text("Execution history", exact=True).click()
    expect(page.locator(f"a[href*='{run_id[:8]}']").first).to_be_visible()


DEMO = ["demo", "--users", "600", "--items", "300", "--days", "28", "--events-per-day", "900"]
INTERACTIONS_CHECKS = ["no_null_ids", "timestamps_inside_partition", "non_negative_weights", "row_count_stable"]


def test_the_ui_after_make_demo(tmp_path, request, browser_page, monkeypatch):
    """After `demo`, `models merge` and a run whose gate fails, the UI tells the truth without another run."""
    page, steps = browser_page
    expect = pytest.importorskip("playwright.sync_api").expect
    env = fresh_environment(tmp_path)

    demo = cli(env, *DEMO)
    assert not any(f"{kind}Warning" in demo.stdout for kind in ("Beta", "Preview", "Supersession")), demo.stdout
    version = re.search(r"^model bundle (\S+): ", demo.stdout, re.MULTILINE)
    assert version, demo.stdout
    version = version.group(1)
    assert f"{version} -> released" in cli(env, "models", "merge", version).stdout
    # A retrain whose gate cannot pass: beats_baselines fails, the release is blocked.
    strict = tmp_path / "strict.yaml"
    strict.write_text(
        "ops:\n"
        "  trained_model: {config: {force: true, trials_per_family: 1}}\n"
        "  model_evaluation: {config: {min_relative_lift: 10.0}}\n"
    )
    failed_run = cli(env, "run", "--config", str(strict), check=False)
    assert failed_run.returncode == 1 and "beats_baselines" in failed_run.stdout, failed_run.stdout

    # What the UI reads, from the same instance: every day's checks passed, each day its own row count.
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    monkeypatch.setenv("RECSYS_DATA_DIR", env["RECSYS_DATA_DIR"])
    warehouse_rows = {p.partition_key: p.total_rows for p in build_resources(env)["warehouse"].list_partitions()}
    with dg.DagsterInstance.get() as instance:
        for check in INTERACTIONS_CHECKS:
            history = instance.event_log_storage.get_asset_check_execution_history(
                dg.AssetCheckKey(dg.AssetKey("interactions"), check), limit=1000
            )
            latest = {}
            for record in history:  # latest first
                latest.setdefault(record.partition, record.status.value)
            assert set(latest) == set(warehouse_rows), check
            assert set(latest.values()) == {"SUCCEEDED"}, (check, latest)
        days = dg.AssetRecordsFilter(asset_key=dg.AssetKey("interactions"), asset_partitions=list(warehouse_rows))
        row_counts = {}
        for record in instance.fetch_materializations(days, limit=1000).records:  # latest first
            metadata = record.asset_materialization.metadata
            row_counts.setdefault(record.partition_key, metadata["dagster/row_count"].value)
        assert row_counts == warehouse_rows
        (blocked,) = instance.get_runs(
            dg.RunsFilter(job_name="retrain_job", statuses=[dg.DagsterRunStatus.FAILURE]), limit=1
        )
        release = instance.fetch_observations(dg.AssetKey("model_release"), limit=1).records[0]
        assert release.asset_observation.metadata["champion"].value == version

    with running_dagster_dev(tmp_path, env, request) as base:
        # The Overview timeline lists the demo's runs under their jobs.
        page.goto(f"{base}/overview/activity/timeline")
        dismiss_community_modal(page)
        expect(page.get_by_text("interactions_job").first).to_be_visible()
        expect(page.get_by_text("retrain_job").first).to_be_visible()
        steps.shot("overview-timeline")

        # Every check of every extracted day passed: the screenshot is kept as the evidence.
        page.goto(f"{base}/assets/interactions?view=checks")
        for check in INTERACTIONS_CHECKS:
            expect(page.get_by_text(check, exact=True).first).to_be_visible()
        expect(page.get_by_text("Skipped", exact=True)).to_have_count(0)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "after-demo-interactions-checks.png"), full_page=True)

        # The blocked run's page opens on the failed gate's verdict and numbers.
        page.goto(f"{base}/runs/{blocked.run_id}")
        expect(page.get_by_text(re.compile(r"blocking check failed: beats_baselines")).first).to_be_visible()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "blocked-run-first-screen.png"), full_page=False)

        # After `models merge`, model_release shows the new champion without another run.
        page.goto(f"{base}/assets/model_release?view=events")
        expect(page.get_by_text("released", exact=True).first).to_be_visible()
        expect(page.get_by_text(version).first).to_be_visible()
        steps.shot("model-release-champion")
