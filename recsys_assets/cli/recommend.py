"""`recommend USER_ID [--day D]`: the list served to a user on a day, from the `recommendations` table."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from recsys_assets.cli.command import Command, Context


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user_id")
    parser.add_argument("--day", type=date.fromisoformat, help="YYYY-MM-DD (default: the latest day in the warehouse)")


def served_list_text(resources: dict[str, Any], user_id: str, day: date, limit: int | None = None) -> str | None:
    """The user's list on `day` with each posting's title (where the catalogue knows it); None when none was served."""
    rows = resources["recommendation_store"].read_day(day, user_id=user_id)
    if rows.num_rows == 0:
        return None
    catalogue = resources["item_catalogue"].read_items(day)
    titles = catalogue.select(["item_id", "title"])
    shown = rows.join(titles, "item_id", join_type="left outer").sort_by("rank")
    first = shown.slice(0, 1).to_pylist()[0]
    lines = [f"{user_id} on {day}: {first['model_family']} {first['model_version']} ({first['source']})"]
    for row in shown.to_pylist()[:limit]:
        lines.append(f"  {row['rank']:>2}  {row['item_id']:<12} {row['title'] or '(no title)'}")
    if limit is not None and shown.num_rows > limit:
        lines.append(f"  ... {shown.num_rows - limit} more (python -m recsys_assets recommend {user_id} --day {day})")
    return "\n".join(lines)


def latest_list_day(resources: dict[str, Any]) -> date | None:
    """The latest day of the warehouse's events (the day whose lists `recommend` shows by default)."""
    partitions = resources["warehouse"].existing_partitions()
    return date.fromisoformat(partitions[-1].partition_key) if partitions else None


def _recommend(args: argparse.Namespace, context: Context) -> int:
    resources = context.resources
    day = args.day or latest_list_day(resources)
    if day is None:
        print("no events in the warehouse yet: seed or import them, then run the graph", file=sys.stderr)
        return 1
    text = served_list_text(resources, args.user_id, day)
    if text is None:
        print(
            f"no list served to {args.user_id} on {day}: they were not active in the days before it, or that day's "
            f"lists were not written (materialize `recommendations` for {day})",
            file=sys.stderr,
        )
        return 1
    print(text)
    return 0


def sample_users(lists: pa.Table, count: int) -> list[str]:
    """`count` users of a day's lists, spread over it (first, middle, last by id)."""
    users = [str(user) for user in pc.unique(lists["user_id"]).sort().to_pylist()]
    if len(users) <= count:
        return users
    return [users[round(i * (len(users) - 1) / (count - 1))] for i in range(count)]


COMMAND = Command(
    "recommend", "print the list served to a user on a day (titles from the catalogue)", _arguments, _recommend
)
