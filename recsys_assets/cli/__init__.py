"""Command line: `python -m recsys_assets <command>` (also the `recsys-assets` script).

One module per command family, each command a `Command` (name, arguments, thin handler; the logic
lives in its own module); `COMMANDS` below is the only list of them. Adding a command is a module
with its `Command` and one line in `COMMANDS`. A failure a handler does not report itself ends
the process with one line naming its cause (`configuration error: ...`), never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import sys
import traceback
from typing import NoReturn

from recsys_assets.cli import data, models, recommend, retention, run, runs, serve
from recsys_assets.cli.command import Command, Context
from recsys_assets.domain.errors import ConfigurationError
from recsys_assets.domain.redaction import scrubbed_output
from recsys_assets.settings import Settings

COMMANDS: tuple[Command, ...] = (
    run.DEMO,
    data.SEED,
    run.RUN,
    data.IMPORT_EVENTS,
    data.IMPORT_ITEMS,
    models.COMMAND,
    serve.COMMAND,
    recommend.COMMAND,
    retention.COMMAND,
    runs.COMMAND,
)

DESCRIPTION = "Keeps a recommendation model fresh: seed or import data, run the graph, manage model versions."
# 128 + SIGPIPE: what a shell reports for a tool whose reader went away (`models list | head -1`).
BROKEN_PIPE_STATUS = 141


def parser() -> argparse.ArgumentParser:
    """The parser: one subcommand per entry of `COMMANDS`."""
    top = argparse.ArgumentParser(prog="python -m recsys_assets", description=DESCRIPTION)
    commands = top.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.arguments(commands.add_parser(command.name, help=command.help))
    return top


def main(argv: list[str] | None = None) -> int:
    """Parse `argv`, read the settings, run the command; every failure it does not report is one line."""
    # Everything the command prints (its own lines, Dagster's console log, a traceback) passes
    # through the secret scrubber: a token or a URL's password never reaches the terminal or a CI log.
    with scrubbed_output():
        args = parser().parse_args(argv)
        handler = next(command for command in COMMANDS if command.name == args.command).handle
        try:
            return handler(args, Context(Settings.from_env()))
        except ConfigurationError as exc:
            print(f"configuration error: {exc}", file=sys.stderr)
            return 2
        except BrokenPipeError:
            raise  # the reader went away: nothing to report to it (`cli` ends quietly)
        except Exception as exc:
            status = _known_failure(exc)
            if status is None:
                # An error nothing above expected: its traceback, scrubbed, and its cause as the last line.
                traceback.print_exc()
                return 1
            return status


def _known_failure(exc: Exception) -> int | None:
    """Print the one line for a failure every command can meet, and its exit status; None for others."""
    # Imported here: these modules load Dagster, which `--help` or a refused argument need not wait for.
    from recsys_assets.resources.secrets import SecretAccessDeniedError, SecretNotFoundError
    from recsys_assets.resources.warehouse import WarehouseUnavailable

    if isinstance(exc, SecretNotFoundError | SecretAccessDeniedError):
        # A secret the settings name but the secret store does not hold: configuration, not an outage.
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, WarehouseUnavailable):
        print(f"warehouse unavailable: {exc}", file=sys.stderr)
        return 3
    return None


def cli() -> NoReturn:
    """The program: `main` in a process of its own, which ends without the interpreter's teardown.

    The native libraries a run loads (DuckDB, Arrow, implicit, OpenBLAS) stop their own threads while
    the interpreter finalizes, and one of them intermittently aborts the process there ("terminate
    called without an active exception", exit -6) after a run that succeeded and printed everything.
    What the program writes is flushed or closed by now (warehouse connections and instance
    transactions close with their steps), so it leaves with its status at once.
    """
    status = _program()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)


def _program() -> int:
    """`main`, with the garbage collector and a reader that goes away handled as a program must.

    Objects alive now (the imported modules) and at the end live until exit: frozen, the garbage
    collector stops re-scanning them during the run and does not collect them at exit (~0.8 s of a
    1 M-event run, benchmarks/README.md). Only here, never in `main`, which tests call in a process
    that goes on (a frozen garbage cycle is never freed).
    """
    gc.freeze()
    try:
        try:
            status = main()
        finally:
            # Here, not at interpreter exit (a traceback there): a reader that went away shows now,
            # also after `--help` or a refused argument (argparse's SystemExit).
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped reading (`models list | head -1`): stop quietly, as other Unix tools do.
        # Python would try to flush stdout again at exit and print a traceback: point it at /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_STATUS
    gc.freeze()
    return status
