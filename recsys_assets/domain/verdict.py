"""A check's verdict, without Dagster: whether it passed, the sentence that says why, and the numbers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """Whether a check passed, the one sentence that says why, and its numbers (check metadata the UI plots)."""

    passed: bool
    description: str
    numbers: dict[str, float | int | str]
