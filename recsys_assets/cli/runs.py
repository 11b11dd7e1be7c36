"""`runs terminate RUN_ID`: the way out for a run left STARTED by a CLI that was killed (kill -9, a lost machine).

While such a run is recorded as unfinished, `run` refuses to start its partition again (`refuse_if_busy`).
"""

from __future__ import annotations

import argparse
import sys

from recsys_assets.cli.command import Command, Context


def _arguments(runs: argparse.ArgumentParser) -> None:
    sub = runs.add_subparsers(dest="runs_command", required=True)
    terminate = sub.add_parser(
        "terminate", help="mark RUN_ID canceled when its process is gone (refused while it is alive)"
    )
    terminate.add_argument("run_id")


def _runs(args: argparse.Namespace, context: Context) -> int:
    from recsys_assets.cli.pipeline import RunNotTerminated, instance, terminate_stale_run

    try:
        run = terminate_stale_run(instance(), args.run_id)
    except RunNotTerminated as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 4
    print(f"run {run.run_id} -> {run.status.value}: its partition can run again")
    return 0


COMMAND = Command("runs", "mark a run left unfinished by a killed process canceled (runs terminate RUN_ID)",
                  _arguments, _runs)  # fmt: skip
