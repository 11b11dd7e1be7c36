"""The command line is its `COMMANDS`: a command is one `Command` and one line there."""

from __future__ import annotations

import argparse

from recsys_assets import cli
from recsys_assets.cli.command import Command, Context


def test_every_command_has_a_name_and_help_once():
    names = [command.name for command in cli.COMMANDS]
    assert names == [
        "demo",
        "seed",
        "run",
        "import-events",
        "import-items",
        "models",
        "serve",
        "recommend",
        "gc",
        "runs",
    ]
    assert all(command.help for command in cli.COMMANDS)


def test_a_command_added_to_the_list_is_parsed_and_handled_with_the_settings(embedded_env, monkeypatch, capsys):
    seen: list[tuple[argparse.Namespace, Context]] = []

    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--times", type=int, default=1)

    def handle(args: argparse.Namespace, context: Context) -> int:
        seen.append((args, context))
        print(f"hello {context.settings.model_name} x{args.times}")
        return 7

    monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, Command("hello", "say hello", arguments, handle)))
    monkeypatch.setenv("RECSYS_MODEL_NAME", "m1")
    assert cli.main(["hello", "--times", "3"]) == 7
    assert capsys.readouterr().out == "hello m1 x3\n"
    [(args, context)] = seen
    assert args.times == 3 and context.settings.data_dir == embedded_env


def test_a_failure_a_handler_does_not_report_is_one_line(embedded_env, monkeypatch, capsys):
    from recsys_assets.resources.warehouse import WarehouseUnavailable

    def handle(args: argparse.Namespace, context: Context) -> int:
        raise WarehouseUnavailable("duckdb:/nowhere#events is locked")

    monkeypatch.setattr(cli, "COMMANDS", (Command("fail", "fail", lambda parser: None, handle),))
    assert cli.main(["fail"]) == 3
    assert capsys.readouterr().err == "warehouse unavailable: duckdb:/nowhere#events is locked\n"


def test_an_unexpected_error_is_its_traceback_and_exit_status_1(embedded_env, monkeypatch, capsys):
    def handle(args: argparse.Namespace, context: Context) -> int:
        raise KeyError("a bug")

    monkeypatch.setattr(cli, "COMMANDS", (Command("bug", "bug", lambda parser: None, handle),))
    assert cli.main(["bug"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and err.strip().splitlines()[-1] == "KeyError: 'a bug'"
