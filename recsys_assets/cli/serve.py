"""`serve`: the champion's recommendations over HTTP (the service itself is recsys_assets/service/)."""

from __future__ import annotations

import argparse

from recsys_assets.cli.command import Command, Context
from recsys_assets.service.cli import run_serve, serve_arguments


def _serve(args: argparse.Namespace, context: Context) -> int:
    # Only what the service reads is built (`build_serving_resources`), not `context.resources`.
    return run_serve(args, context.settings)


COMMAND = Command(
    "serve",
    "serve the champion's recommendations over HTTP, following promotions without a restart",
    serve_arguments,
    _serve,
)
