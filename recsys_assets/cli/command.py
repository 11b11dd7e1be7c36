"""What a command is (a name, its arguments, its handler) and what a handler works with."""

from __future__ import annotations

import argparse
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from recsys_assets.settings import Settings


class Context:
    """What a handler works with: the settings, read once, and the resources, built on first use."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @functools.cached_property
    def resources(self) -> dict[str, Any]:
        # Imported here: `--help` and a refused argument should not wait for Dagster and the clients.
        from recsys_assets.resources import build_resources

        return build_resources(self.settings)


@dataclass(frozen=True)
class Command:
    """One subcommand: `arguments` adds its options to its parser, `handle` runs it and returns the exit status.

    A handler stays thin: it parses, calls the logic (kept in its own module) and prints. Every failure
    the handler does not turn into its own message ends as one line from `recsys_assets.cli.main`.
    """

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    handle: Callable[[argparse.Namespace, Context], int]


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a share between 0 and 1, got {text}")
    return value
