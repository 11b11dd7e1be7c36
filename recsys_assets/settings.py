"""Deployment settings read from the environment.

Everything that changes between the embedded default and a cloud deployment is an
environment variable read here, so switching backends never means editing code.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from recsys_assets.domain.errors import ConfigurationError
from recsys_assets.domain.names import safe_name

REPO_ROOT = Path(__file__).resolve().parent.parent
# Without data or a setting, partitions cover this many days back from today (a rolling horizon).
DEFAULT_HORIZON_DAYS = 90
# Written by `seed` and `import-events` in the data folder: the first day the warehouse holds.
FIRST_DAY_FILE = "first_day"


def explicit_partitions_start(env: Mapping[str, str] | None = None) -> date | None:
    """`RECSYS_PARTITIONS_START` when it is set, else None (the start then follows the data)."""
    env = os.environ if env is None else env
    start = env.get("RECSYS_PARTITIONS_START", "").strip()
    if not start:
        return None
    try:
        return date.fromisoformat(start)
    except ValueError:
        raise ConfigurationError(f"RECSYS_PARTITIONS_START={start!r} is not a date (YYYY-MM-DD)") from None


def partitions_start(env: Mapping[str, str], data_dir: Path) -> str:
    """`RECSYS_PARTITIONS_START` if set, else the first day seeded or imported, else 90 days ago.

    Partitions then begin where the data does, so the UI's fill bars and partition picker show the
    data instead of decades of empty days.
    """
    explicit = explicit_partitions_start(env)
    if explicit:
        return explicit.isoformat()
    try:
        return date.fromisoformat((data_dir / FIRST_DAY_FILE).read_text().strip()).isoformat()
    except (FileNotFoundError, ValueError):
        return (datetime.now(UTC).date() - timedelta(days=DEFAULT_HORIZON_DAYS)).isoformat()


def record_first_day(data_dir: Path, days: list[str]) -> None:
    """Remember the earliest of `days` (YYYY-MM-DD) as the data's first day, keeping an earlier one."""
    if not days:
        return
    path = data_dir / FIRST_DAY_FILE
    first = min(days)
    if path.exists() and path.read_text().strip() <= first:
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(first + "\n")


@dataclass(frozen=True)
class Settings:
    """Values that shape the asset graph itself (not just resource configuration)."""

    data_dir: Path
    partitions_start: str
    training_window_days: int
    model_name: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        raw_window = env.get("RECSYS_TRAINING_WINDOW_DAYS", "28").strip()
        if not raw_window.isdigit() or int(raw_window) < 1:
            raise ConfigurationError(f"RECSYS_TRAINING_WINDOW_DAYS={raw_window!r} must be a whole number of days, >= 1")
        model_name = safe_name(env.get("RECSYS_MODEL_NAME", "jobs-als"), "RECSYS_MODEL_NAME")
        data_dir = Path(env.get("RECSYS_DATA_DIR", str(REPO_ROOT / "data"))).resolve()
        return cls(
            data_dir=data_dir,
            partitions_start=partitions_start(env, data_dir),
            training_window_days=int(raw_window),
            model_name=model_name,
        )


SETTINGS = Settings.from_env()


def code_version() -> str | None:
    """The git commit the code runs from: set by CI/the image build, else asked of git, else None."""
    if os.environ.get("RECSYS_CODE_VERSION"):
        return os.environ["RECSYS_CODE_VERSION"]
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=5
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        return None
