"""`python -m recsys_assets serve`: its arguments and what it does (registered in recsys_assets/cli/serve.py),
and the lines `demo` ends with."""

from __future__ import annotations

import argparse
import logging
import math
from datetime import date
from typing import TYPE_CHECKING
from urllib.parse import quote

from recsys_assets.domain.layout import BundleFile, ModelStoreKeys
from recsys_assets.settings import Settings

if TYPE_CHECKING:  # the command line builds its parser without loading Dagster
    from recsys_assets.resources.model_store import ModelStore

DEFAULT_PORT = 8000


def _seconds(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port from 0 to 65535, got {text}")
    return value


def serve_arguments(serve: argparse.ArgumentParser) -> None:
    """The `serve` command's options."""
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 in a container)"
    )
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    serve.add_argument(
        "--reload-seconds", type=_seconds, default=30.0, help="how often the champion pointer is read (default 30)"
    )
    serve.add_argument(
        "--catalogue-seconds",
        type=_seconds,
        default=300.0,
        help="how often the day's catalogue is read for closed postings (default 300; also when the day changes)",
    )
    serve.add_argument(
        "--day", type=date.fromisoformat, help="YYYY-MM-DD: exclude postings closed by this day (default: today, UTC)"
    )
    serve.add_argument("--access-log", action="store_true", help="log every request (off: /metrics counts them)")


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Build the model store and catalogue from the settings and serve until stopped."""
    import uvicorn

    from recsys_assets.resources import build_serving_resources
    from recsys_assets.service.app import create_app
    from recsys_assets.service.champion import ChampionFollower
    from recsys_assets.service.metrics import ServiceMetrics

    resources = build_serving_resources(settings)
    store: ModelStore = resources["model_store"]
    metrics = ServiceMetrics()
    follower = ChampionFollower(
        store=store,
        model_name=settings.model_name,
        metrics=metrics,
        catalogue=resources["item_catalogue"],
        reload_seconds=args.reload_seconds,
        catalogue_seconds=args.catalogue_seconds,
        day=args.day,
        service_process=True,
    )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    print(f"serving the champion of {settings.model_name} from {store.uri('')} on http://{args.host}:{args.port}")
    uvicorn.run(
        create_app(follower, metrics),
        host=args.host,
        port=args.port,
        access_log=args.access_log,
        timeout_graceful_shutdown=5,
    )
    return 0


def demo_hint(store: ModelStore, model_name: str, new_version: str | None) -> str:
    """What `demo` prints last: how to make the new version the champion, serve it, and ask it for a list."""
    champion = store.read_champion(model_name)
    served = champion["version"] if champion else new_version
    if served is None:
        return ""
    lines = ["", "Serve the champion over HTTP (it follows promotions without a restart):"]
    if new_version and (champion is None or champion["version"] != new_version):
        lines.append(
            f"  .venv/bin/python -m recsys_assets models merge {new_version}   # play the reviewer: promote it"
        )
    lines.append(f"  .venv/bin/python -m recsys_assets serve --port {DEFAULT_PORT}")
    users = store.get_object(ModelStoreKeys(model_name).bundle_file(served, BundleFile.USER_IDS))
    if users:
        from recsys_assets.domain import storage

        user = quote(str(storage.table_from_bytes(users)["user_id"][0].as_py()), safe="")
        lines.append(f"  curl -s 'http://127.0.0.1:{DEFAULT_PORT}/v1/users/{user}/recommendations?n=5'")
    return "\n".join(lines)
