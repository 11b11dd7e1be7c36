"""The online service under uvicorn on a loopback port, through a real HTTP client (httpx).

Champions are real bundles: a small matrix fitted with the project's own families, published
through the model store's all-or-nothing protocol (`support/bundles.py`), and promoted by writing
the champion pointer, as a merged release does.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pytest
from prometheus_client.parser import text_string_to_metric_families

from recsys_assets.domain.families import topk
from recsys_assets.domain.items import as_of
from recsys_assets.resources.catalogue import DuckDBItemCatalogue, ItemCatalogue
from recsys_assets.resources.model_store import LocalModelStore, ModelStore
from recsys_assets.service.app import HISTORY_ROUTE, USER_ROUTE, create_app
from recsys_assets.service.champion import LOADING_SWITCH_INTERVAL, ChampionFollower, load_champion_bundle
from recsys_assets.service.metrics import ServiceMetrics
from recsys_assets.serving import load_bundle
from recsys_assets.settings import SETTINGS
from recsys_assets_tests.support.bundles import FittedBundle, publish_fitted
from recsys_assets_tests.support.clients import make_store
from recsys_assets_tests.support.service import GatedModelStore, eventually, running

MODEL = SETTINGS.model_name
ALS = {"factors": 8, "iterations": 5, "num_threads": 1, "random_state": 0}
DAY = date(2026, 3, 10)
# The ids `publish_fitted` gives the items of its default matrix.
ITEMS = [f"j{i:04d}" for i in range(40)]


@pytest.fixture
def store(tmp_path) -> GatedModelStore:
    return GatedModelStore(root=str(tmp_path / "model_store"))


@contextmanager
def serving(
    store: ModelStore, catalogue: ItemCatalogue | None = None, day: date | None = DAY
) -> Iterator[tuple[httpx.Client, ChampionFollower]]:
    """The app over `store`, checking the champion pointer every 50 ms."""
    metrics = ServiceMetrics()
    follower = ChampionFollower(store, MODEL, metrics, catalogue=catalogue, reload_seconds=0.05, day=day)
    with running(create_app(follower, metrics)) as client:
        yield client, follower


def served_version(client: httpx.Client) -> str | None:
    ready = client.get("/readyz")
    return ready.json()["model_version"] if ready.status_code == 200 else None


def user_list(client: httpx.Client, user: str, n: int = 10) -> httpx.Response:
    return client.get(f"/v1/users/{user}/recommendations", params={"n": n})


def metric_samples(client: httpx.Client) -> dict[str, list]:
    """Every sample of /metrics by its name, parsed by prometheus-client's own text parser."""
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list], name: str, **labels: str) -> float:
    matching = [s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    return sum(matching)


def test_without_a_champion_readiness_and_lists_answer_503_saying_why_while_health_is_200(store):
    with serving(store) as (client, _):
        reason = eventually(lambda: "no champion promoted yet" in client.get("/readyz").text and client.get("/readyz"))
        assert reason.status_code == 503
        assert reason.json()["status"] == "not ready"
        assert f"models/{MODEL}/champion.json does not exist" in reason.json()["reason"]
        for response in (user_list(client, "u0001"), client.post(HISTORY_ROUTE, json={"history": ["j0001"]})):
            assert response.status_code == 503
            assert response.json()["error"].startswith("no champion is being served: no champion promoted yet")
        assert client.get("/healthz").json() == {"status": "alive"}


@pytest.mark.parametrize(
    ("family", "params"),
    [("item_knn", {"neighbours": 20}), ("als", ALS), ("ease", {"regularization": 5.0})],
)
@pytest.mark.slow
def test_a_known_users_list_is_the_bundles_own_list_from_their_history(store, family, params):
    fitted = publish_fitted(store, "v1", family, params)
    store.write_champion(MODEL, "v1")
    offline = load_bundle(fitted.uri)
    with serving(store) as (client, _):
        eventually(lambda: served_version(client) == "v1")
        for user in fitted.user_ids[::3]:  # every taste group, a third of its users
            response = user_list(client, user, n=7)
            seen = offline.seen_item_ids(user)
            expected = offline.recommend(user, seen, 7)
            assert len(expected) == 7 and not set(expected) & set(seen)
            assert response.json() == {
                "user_id": user,
                "model_version": "v1",
                "model_family": family,
                "source": "model",
                "n": 7,
                "items": expected,
            }
            assert response.headers["X-Model-Version"] == "v1"
            assert response.headers["X-Recommendation-Source"] == "model"


@pytest.fixture
def blas_restored(monkeypatch) -> Iterator[None]:
    """BLAS thread counts and the pinned flag put back after a test that pins them (it serves in this process)."""
    controller = topk.blas_controller()
    before = [(library, library.num_threads) for library in controller.lib_controllers]
    monkeypatch.setattr(topk, "_blas_pinned", False)
    yield
    for library, threads in before:
        library.set_num_threads(threads)


@pytest.mark.slow
def test_the_service_process_pins_blas_once_and_lets_requests_first_while_a_champion_loads(
    store, blas_restored, monkeypatch
):
    """In `serve`'s process: BLAS pinned to one thread once a champion is loaded (no request limits it again,
    the lists are the same), and a short GIL switch interval only while a new champion loads."""
    fitted = publish_fitted(store, "v1", "als", ALS)
    publish_fitted(store, "v2", "als", {**ALS, "random_state": 1})
    store.write_champion(MODEL, "v1")
    offline = load_bundle(fitted.uri)
    expected = {user: offline.recommend(user, offline.seen_item_ids(user), 7) for user in fitted.user_ids[::3]}
    controller = topk.blas_controller()
    limits: list[dict] = []
    limit = controller.limit
    monkeypatch.setattr(controller, "limit", lambda **kwargs: limits.append(kwargs) or limit(**kwargs))
    interval = sys.getswitchinterval()
    metrics = ServiceMetrics()
    follower = ChampionFollower(store, MODEL, metrics, reload_seconds=0.05, day=DAY, service_process=True)
    with running(create_app(follower, metrics)) as client:
        eventually(lambda: served_version(client) == "v1")
        assert limits == [{"limits": 1, "user_api": "blas"}]
        assert all(library.num_threads == 1 for library in controller.lib_controllers if library.user_api == "blas")
        for user, items in expected.items():
            assert user_list(client, user, n=7).json()["items"] == items
        assert len(limits) == 1, "a request limited BLAS again"

        assert sys.getswitchinterval() == interval
        store.hold("v2")
        store.write_champion(MODEL, "v2")
        store.wait_until_loading()
        assert sys.getswitchinterval() == LOADING_SWITCH_INTERVAL
        store.release()
        eventually(lambda: served_version(client) == "v2")
        assert sys.getswitchinterval() == interval


def popularity_order(fitted: FittedBundle) -> list[str]:
    """The bundle's items by how many users saw them, ties by item: the fallback's order."""
    counts = np.asarray(fitted.history.sum(axis=0)).ravel()
    return [fitted.item_ids[i] for i in np.lexsort((np.arange(len(counts)), -counts))]


def catalogue_with(tmp_path: Path, item_ids: list[str], closed: dict[str, date]) -> DuckDBItemCatalogue:
    """A warehouse catalogue of `item_ids`, all posted on Jan 1st, open unless `closed` gives their closing day."""
    catalogue = DuckDBItemCatalogue(path=str(tmp_path / "warehouse.duckdb"))
    catalogue.replace_items(
        pa.table(
            {
                "item_id": item_ids,
                "title": [f"posting {item}" for item in item_ids],
                "description": ["python backend"] * len(item_ids),
                "category": ["segment-00"] * len(item_ids),
                "location": ["remote"] * len(item_ids),
                "posted_date": [date(2026, 1, 1)] * len(item_ids),
                "closed_date": [closed.get(item) for item in item_ids],
            }
        )
    )
    return catalogue


@pytest.mark.slow
def test_closed_postings_follow_the_days_catalogue_not_the_mask_the_bundle_was_built_with(store, tmp_path):
    fitted = publish_fitted(store, "v0", "item_knn", {"neighbours": 20})
    # The three most popular items: the first was closed when the bundle was built, but the catalogue
    # has it open again; the second closes on the day served; the third the day after, unknown on the day.
    reopened, closing, closing_later = popularity_order(fitted)[:3]
    excluded = np.array([item == reopened for item in fitted.item_ids])
    fitted = publish_fitted(store, "v1", "item_knn", {"neighbours": 20}, excluded=excluded)
    store.write_champion(MODEL, "v1")
    catalogue = catalogue_with(tmp_path, fitted.item_ids, {closing: DAY, closing_later: date(2026, 3, 11)})
    offline = load_bundle(fitted.uri)
    assert offline.exclude_closed(as_of(catalogue.read_items(DAY), DAY)) == 1
    with serving(store, catalogue) as (client, _):
        eventually(lambda: served_version(client) == "v1")
        ready = client.get("/readyz").json()
        assert ready["closed_items"] == 1 and ready["closed_from"] == f"catalogue of {DAY}"
        stranger = user_list(client, "someone-new", n=5).json()
        assert stranger["source"] == "fallback" and stranger["items"][:2] == [reopened, closing_later]
        listed = set()
        for user in fitted.user_ids:
            items = user_list(client, user).json()["items"]
            assert items == offline.recommend(user, offline.seen_item_ids(user), 10)
            listed.update(items)
        assert closing not in listed and {reopened, closing_later} <= listed
        assert value(metric_samples(client), "recsys_serving_closed_items") == 1


def test_the_catalogue_unreadable_keeps_the_build_time_mask_and_is_counted(store, tmp_path):
    most_popular = popularity_order(publish_fitted(store, "v0", "item_knn", {"neighbours": 20}))[0]
    fitted = publish_fitted(
        store, "v1", "item_knn", {"neighbours": 20}, excluded=np.array([item == most_popular for item in ITEMS])
    )
    assert fitted.item_ids == ITEMS
    store.write_champion(MODEL, "v1")
    missing = DuckDBItemCatalogue(path=str(tmp_path / "no-such-warehouse.duckdb"))
    with serving(store, missing) as (client, _):
        eventually(lambda: served_version(client) == "v1")
        ready = client.get("/readyz").json()
        assert ready["closed_items"] == 1 and ready["closed_from"] == "bundle build"
        assert most_popular not in user_list(client, "someone-new").json()["items"]
        assert value(metric_samples(client), "recsys_serving_catalogue_refreshes_total", outcome="failure") >= 1


@pytest.fixture(scope="module")
def served_bundle(tmp_path_factory) -> Iterator[tuple[httpx.Client, FittedBundle]]:
    """One item-kNN champion served for the read-only tests below."""
    store = GatedModelStore(root=str(tmp_path_factory.mktemp("served") / "model_store"))
    fitted = publish_fitted(store, "v1", "item_knn", {"neighbours": 20})
    store.write_champion(MODEL, "v1")
    with serving(store) as (client, _):
        eventually(lambda: served_version(client) == "v1")
        yield client, fitted


@pytest.fixture
def served(served_bundle) -> httpx.Client:
    return served_bundle[0]


def test_an_unknown_user_gets_the_popularity_fallback_never_an_error(served_bundle):
    served, fitted = served_bundle
    response = user_list(served, "never-seen-before", n=4)
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "fallback" and response.headers["X-Recommendation-Source"] == "fallback"
    assert body["reason"] == "unknown user: the model was not trained on them"
    assert body["items"] == popularity_order(fitted)[:4]


@pytest.mark.parametrize("n", ["0", "101", "-3", "ten", "2.5", ""])
def test_n_outside_1_to_100_is_a_422_with_one_line(served, n):
    response = served.get("/v1/users/u0001/recommendations", params={"n": n})
    assert response.status_code == 422
    assert response.json() == {"error": f"n must be a whole number from 1 to 100, got {n}"}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"history": ["j0001"], "n": 0}, "n must be a whole number from 1 to 100, got 0"),
        ({"history": ["j0001"], "n": "5"}, 'n must be a whole number from 1 to 100, got "5"'),
        ({"history": "j0001"}, "history must be a list of item ids (strings)"),
        ({"history": [1, 2]}, "history must be a list of item ids (strings)"),
        ({"history": [], "user": "u1"}, "unexpected fields ['user']: the body takes history and n"),
        (["j0001"], 'the body must be a JSON object: {"history": [item ids...], "n": 10}'),
    ],
)
def test_a_malformed_history_request_is_a_422_with_one_line(served, body, error):
    response = served.post(HISTORY_ROUTE, json=body)
    assert (response.status_code, response.json()) == (422, {"error": error})


def test_a_body_that_is_not_json_is_a_422(served):
    response = served.post(HISTORY_ROUTE, content=b"history=j0001", headers={"content-type": "text/plain"})
    assert response.status_code == 422 and response.json()["error"].startswith("the body is not JSON")


def test_a_history_over_1000_items_or_a_body_over_1_mib_is_a_413(served):
    assert served.post(HISTORY_ROUTE, json={"history": ["j0001"] * 1000}).status_code == 200
    response = served.post(HISTORY_ROUTE, json={"history": ["j0001"] * 1001})
    assert (response.status_code, response.json()) == (
        413,
        {"error": "history of 1,001 items is over the 1,000-item limit"},
    )
    big = json.dumps({"history": ["x" * 2000] * 600}).encode()
    response = served.post(HISTORY_ROUTE, content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "over the 1,048,576 limit" in response.json()["error"]

    def chunks() -> Iterator[bytes]:  # no content-length: the body is refused while it is read
        yield b'{"history": ["'
        for _ in range(2000):
            yield b"x" * 1024

    response = served.post(HISTORY_ROUTE, content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "over the 1,048,576-byte limit" in response.json()["error"]


def test_a_history_is_folded_in_its_unknown_ids_ignored_and_counted(served_bundle):
    served, fitted = served_bundle
    before = value(metric_samples(served), "recsys_serving_unknown_history_items_total")
    history = ["j0010", "j0011", "j0012", "not-a-posting", "gone-too"]
    response = served.post(HISTORY_ROUTE, json={"history": history, "n": 5})
    body = response.json()
    assert response.status_code == 200 and body["source"] == "model" and body["unknown_items"] == 2
    assert len(body["items"]) == 5 and not set(body["items"]) & set(history)
    # The history is the second taste group's (items 10-19): item-kNN answers from that group first.
    assert sum(item in {f"j{i:04d}" for i in range(10, 20)} for item in body["items"]) >= 4
    assert value(metric_samples(served), "recsys_serving_unknown_history_items_total") == before + 2
    only_unknown = served.post(HISTORY_ROUTE, json={"history": ["nope"], "n": 3}).json()
    assert only_unknown["source"] == "fallback" and only_unknown["items"] == popularity_order(fitted)[:3]
    assert only_unknown["reason"] == "no item of the history is in the model's catalogue"


def test_a_family_that_cannot_fold_in_falls_back_for_a_history_and_says_so(store):
    fitted = publish_fitted(store, "v1", "bpr", {"factors": 8, "iterations": 5, "num_threads": 1, "random_state": 0})
    store.write_champion(MODEL, "v1")
    popular = popularity_order(fitted)
    with serving(store) as (client, _):
        eventually(lambda: served_version(client) == "v1")
        body = client.post(HISTORY_ROUTE, json={"history": popular[:2], "n": 3}).json()
        assert body["source"] == "fallback" and body["items"] == popular[2:5]
        assert body["reason"] == "the bpr family cannot fold in a history it was not trained on"
        assert user_list(client, "u0003").json()["source"] == "model"  # a known user is still ranked by BPR


def test_metrics_count_and_time_requests_by_route_template_and_status_and_name_the_version(served):
    before = metric_samples(served)
    for user in ("u0001", "u0002", "u0003"):
        user_list(served, user)
    user_list(served, "u0001", n=0)
    served.get("/no/such/route")
    served.request("PROPFIND", "/healthz")  # a method HTTP parsers know, outside the labelled set
    after = metric_samples(served)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"route": USER_ROUTE, "method": "GET", "status": "200"}
    assert grew("recsys_http_requests_total", **ok) == 3
    assert grew("recsys_http_request_duration_seconds_count", **ok) == 3
    assert grew("recsys_http_request_duration_seconds_bucket", **ok, le="+Inf") == 3
    assert grew("recsys_http_requests_total", route=USER_ROUTE, status="422") == 1
    assert grew("recsys_http_requests_total", route="unmatched", status="404") == 1
    assert grew("recsys_http_requests_total", route="/healthz", method="other", status="405") == 1
    assert grew("recsys_serving_lists_total", route=USER_ROUTE, source="model") == 3
    info = after["recsys_serving_model_info"]
    assert [(s.labels, s.value) for s in info] == [({"model_name": MODEL, "version": "v1", "family": "item_knn"}, 1.0)]
    assert value(after, "recsys_serving_reloads_total", outcome="success") == 1
    assert value(after, "recsys_serving_reloads_total", outcome="failure") == 0
    assert value(after, "process_resident_memory_bytes") > 0


@pytest.mark.slow
def test_a_promotion_is_picked_up_without_a_restart_and_the_old_version_serves_until_the_new_one_is_verified(store):
    publish_fitted(store, "v1", "item_knn", {"neighbours": 20})
    store.write_champion(MODEL, "v1")
    publish_fitted(store, "v2", "als", ALS)
    with serving(store) as (client, follower):
        eventually(lambda: served_version(client) == "v1")
        store.hold("v2")  # the new version's files arrive slowly
        store.write_champion(MODEL, "v2")
        store.wait_until_loading()
        for _ in range(5):
            response = user_list(client, "u0001")
            assert response.status_code == 200 and response.headers["X-Model-Version"] == "v1"
            assert served_version(client) == "v1"
        store.release()
        eventually(lambda: served_version(client) == "v2")
        response = user_list(client, "u0001")
        assert response.headers["X-Model-Version"] == "v2" and response.json()["model_family"] == "als"
        offline = load_champion_bundle(store, MODEL, "v2")
        assert response.json()["items"] == offline.recommend("u0001", offline.seen_item_ids("u0001"), 10)
        samples = metric_samples(client)
        assert value(samples, "recsys_serving_reloads_total", outcome="success") == 2
        assert [s.labels["version"] for s in samples["recsys_serving_model_info"]] == ["v2"]
        assert follower.refused == {}


def corrupt_model_file(store: GatedModelStore, version: str) -> None:
    (Path(store.root) / "models" / MODEL / version / "model.npz").write_bytes(b"tampered after publishing")


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        ("checksum", "^BundleIntegrityError: bundle .*/v2: model.npz does not match the checksum in its manifest$"),
        ("unloadable", "^ValueError: .*pickle"),
        ("no history", "BundleIntegrityError: bundle jobs-als/v2 has no history.npz"),
    ],
)
def test_a_broken_new_champion_is_refused_while_the_old_one_keeps_serving(store, caplog, breakage, reason):
    publish_fitted(store, "v1", "item_knn", {"neighbours": 20})
    store.write_champion(MODEL, "v1")
    if breakage == "unloadable":  # v1's files with a model file that is no archive; its checksums match
        manifest = json.loads(store.get_object(f"models/{MODEL}/v1/manifest.json") or b"")
        files = {name: store.read_file(MODEL, "v1", name) for name in manifest["files"]}
        store.publish_bundle(MODEL, "v2", {**files, "model.npz": b"not an npz archive"}, {**manifest, "version": "v2"})
    else:
        publish_fitted(store, "v2", "als", ALS, with_history=breakage != "no history")
        if breakage == "checksum":
            corrupt_model_file(store, "v2")
    with serving(store) as (client, follower):
        eventually(lambda: served_version(client) == "v1")
        store.write_champion(MODEL, "v2")
        eventually(lambda: "v2" in follower.refused)
        assert re.search(reason, follower.refused["v2"]), follower.refused["v2"]
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["model_version"] == "v1"
        assert ready.json()["refused"] == {"v2": follower.refused["v2"]}
        assert "refused champion jobs-als/v2" in ready.json()["warning"]
        assert user_list(client, "u0001").headers["X-Model-Version"] == "v1"
        samples = metric_samples(client)
        # Refused once, not again at every check while the pointer stays on it.
        assert value(samples, "recsys_serving_reloads_total", outcome="failure") == 1
        assert [s.labels["version"] for s in samples["recsys_serving_model_info"]] == ["v1"]
    assert any("refused champion jobs-als/v2" in record.getMessage() for record in caplog.records)


def test_a_refused_first_champion_leaves_the_service_not_ready_saying_why(store):
    publish_fitted(store, "v1", "item_knn", {"neighbours": 20})
    corrupt_model_file(store, "v1")
    store.write_champion(MODEL, "v1")
    with serving(store) as (client, _):
        ready = eventually(lambda: "refused" in client.get("/readyz").text and client.get("/readyz"))
        assert ready.status_code == 503
        assert ready.json()["reason"].startswith(f"champion {MODEL}/v1 refused: BundleIntegrityError")
        assert user_list(client, "u0001").status_code == 503


def test_an_unreadable_or_removed_pointer_keeps_the_champion_serving_and_says_so(store):
    publish_fitted(store, "v1", "item_knn", {"neighbours": 20})
    store.write_champion(MODEL, "v1")
    pointer = Path(store.root) / "models" / MODEL / "champion.json"
    with serving(store) as (client, _):
        eventually(lambda: served_version(client) == "v1")
        pointer.write_text("{not json")
        warning = eventually(lambda: client.get("/readyz").json().get("warning"))
        assert warning.startswith(f"cannot read the champion pointer of {MODEL}: JSONDecodeError")
        assert user_list(client, "u0001").status_code == 200
        pointer.unlink()
        eventually(lambda: "was removed" in client.get("/readyz").json().get("warning", ""))
        assert user_list(client, "u0001").headers["X-Model-Version"] == "v1"


@pytest.mark.slow
def test_the_champion_is_followed_in_an_s3_model_store(s3_standin, tmp_path):
    # moto's S3 server (support/standins/s3.py), reached by the project's S3ModelStore through boto3.
    store = make_store(s3_standin, tmp_path)
    publish_fitted(store, "v1", "als", ALS)
    store.write_champion(MODEL, "v1")
    offline = load_champion_bundle(store, MODEL, "v1")
    with serving(store) as (client, _):
        eventually(lambda: served_version(client) == "v1")
        assert user_list(client, "u0005").json()["items"] == offline.recommend(
            "u0005", offline.seen_item_ids("u0005"), 10
        )


class UnreachableStore(LocalModelStore):
    """A store whose every read fails with a message quoting a credential, as a misconfigured URL would."""

    def get_object(self, key: str) -> bytes | None:
        raise OSError(f"cannot reach https://reader:{SECRET}@store.internal/{key}")


SECRET = "hunter2-not-for-logs"


def test_an_unreachable_store_is_retried_counted_and_its_credentials_never_shown(tmp_path, caplog):
    store = UnreachableStore(root=str(tmp_path))
    with serving(store) as (client, _):
        ready = eventually(
            lambda: "cannot read the champion pointer" in client.get("/readyz").text and client.get("/readyz")
        )
        assert ready.status_code == 503
        assert "https://reader:[redacted]@store.internal/" in ready.json()["reason"]
        eventually(lambda: value(metric_samples(client), "recsys_serving_reloads_total", outcome="failure") >= 2)
        for response in (ready, user_list(client, "u0001"), client.get("/metrics")):
            assert SECRET not in response.text
    assert caplog.records and not any(SECRET in record.getMessage() for record in caplog.records)
