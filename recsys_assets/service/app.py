"""The HTTP API (Starlette): recommendations for a known user or a posted history, health, readiness and metrics.

Handlers are `async` and rank inline on the event loop: a list takes about a millisecond, less than
a hop to a thread pool and back, and the swap of a new champion then never races a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from recsys_assets.service.champion import Champion, ChampionFollower
from recsys_assets.service.lists import Recommendations, for_history, for_user
from recsys_assets.service.metrics import CONTENT_TYPE, MetricsMiddleware, ServiceMetrics

USER_ROUTE = "/v1/users/{user_id}/recommendations"
HISTORY_ROUTE = "/v1/recommendations"


@dataclass(frozen=True)
class Limits:
    """Bounds on what a request may ask for."""

    max_n: int = 100
    max_history: int = 1000
    # A history of max_history ids of a few hundred characters each fits; anything larger is refused unread.
    max_body_bytes: int = 1 << 20


class RequestRefused(Exception):
    """A request the service will not answer as asked: its status and one line saying why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def refused(exc: RequestRefused) -> JSONResponse:
    return JSONResponse({"error": exc.reason}, status_code=exc.status)


def list_size(value: object, limits: Limits, text: bool = False) -> int:
    """`n` when it is a whole number in 1..max_n, else a 422; `text`: `value` is the query string's text."""
    n = value
    if text:
        try:
            n = int(str(value))
        except ValueError:
            n = None
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= limits.max_n:
        shown = str(value) if text else json.dumps(value)
        raise RequestRefused(422, f"n must be a whole number from 1 to {limits.max_n}, got {shown[:40]}")
    return n


async def json_body(request: Request, limits: Limits) -> dict:
    """The request's JSON object, read no further than `max_body_bytes`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise RequestRefused(
            413, f"request body of {int(declared):,} bytes is over the {limits.max_body_bytes:,} limit"
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limits.max_body_bytes:
            raise RequestRefused(413, f"request body is over the {limits.max_body_bytes:,}-byte limit")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RequestRefused(422, 'the body is not JSON: send {"history": [item ids...], "n": 10}') from None
    if not isinstance(payload, dict):
        raise RequestRefused(422, 'the body must be a JSON object: {"history": [item ids...], "n": 10}')
    return payload


def history_of(payload: dict, limits: Limits) -> list[str]:
    """The posted history: a list of item ids (strings) no longer than `max_history`."""
    unexpected = sorted(set(payload) - {"history", "n"})
    if unexpected:
        raise RequestRefused(422, f"unexpected fields {unexpected}: the body takes history and n")
    history = payload.get("history")
    if not isinstance(history, list):
        raise RequestRefused(422, "history must be a list of item ids (strings)")
    if len(history) > limits.max_history:
        raise RequestRefused(413, f"history of {len(history):,} items is over the {limits.max_history:,}-item limit")
    if not all(isinstance(item, str) for item in history):
        raise RequestRefused(422, "history must be a list of item ids (strings)")
    return history


def create_app(follower: ChampionFollower, metrics: ServiceMetrics, limits: Limits = Limits()) -> Starlette:
    """The service around `follower`, which it starts following when the app starts and stops when it stops."""

    def serving() -> Champion:
        champion = follower.champion
        if champion is None:
            raise RequestRefused(503, f"no champion is being served: {follower.waiting_reason}")
        return champion

    def answer(route: str, champion: Champion, n: int, result: Recommendations, **extra: object) -> JSONResponse:
        metrics.listed(route, result.source)
        body = {
            **extra,
            "model_version": champion.version,
            "model_family": champion.family,
            "source": result.source,
            "n": n,
            "items": result.items,
        }
        if result.reason:
            body["reason"] = result.reason
        headers = {"X-Model-Version": champion.version, "X-Recommendation-Source": result.source}
        return JSONResponse(body, headers=headers)

    async def user_recommendations(request: Request) -> Response:
        try:
            n = list_size(request.query_params.get("n", "10"), limits, text=True)
            champion = serving()
        except RequestRefused as exc:
            return refused(exc)
        user_id = request.path_params["user_id"]
        return answer(USER_ROUTE, champion, n, for_user(champion.bundle, user_id, n), user_id=user_id)

    async def history_recommendations(request: Request) -> Response:
        try:
            payload = await json_body(request, limits)
            history = history_of(payload, limits)
            n = list_size(payload.get("n", 10), limits)
            champion = serving()
        except RequestRefused as exc:
            return refused(exc)
        result = for_history(champion.bundle, history, n)
        if result.unknown_items:
            metrics.unknown_history_items.inc(result.unknown_items)
        return answer(HISTORY_ROUTE, champion, n, result, unknown_items=result.unknown_items)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        champion = follower.champion
        if champion is None:
            return JSONResponse({"status": "not ready", "reason": follower.waiting_reason}, status_code=503)
        body = {"status": "ready", "model_name": follower.model_name, **champion.describe()}
        if follower.warning:
            body["warning"] = follower.warning
        if follower.refused:
            body["refused"] = follower.refused
        return JSONResponse(body)

    async def prometheus(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(follower.run(), name="champion-follower")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return Starlette(
        routes=[
            Route(USER_ROUTE, user_recommendations, methods=["GET"]),
            Route(HISTORY_ROUTE, history_recommendations, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
        ],
        middleware=[Middleware(MetricsMiddleware, metrics=metrics)],
        lifespan=lifespan,
    )
