"""Deployment settings read from the environment.

Everything that changes between the embedded default and a cloud deployment is an
environment variable read here, so switching backends never means editing code.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from recsys_assets.domain.layout import ConfigurationError, safe_name

REPO_ROOT = Path(__file__).resolve().parent.parent


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
        start = env.get("RECSYS_PARTITIONS_START", "1995-01-01").strip()
        try:
            date.fromisoformat(start)
        except ValueError:
            raise ConfigurationError(f"RECSYS_PARTITIONS_START={start!r} is not a date (YYYY-MM-DD)") from None
        model_name = safe_name(env.get("RECSYS_MODEL_NAME", "jobs-als"), "RECSYS_MODEL_NAME")
        return cls(
            data_dir=Path(env.get("RECSYS_DATA_DIR", str(REPO_ROOT / "data"))).resolve(),
            # MovieLens 100k starts in 1997; a start this early lets imported public data
            # fall inside the partition space without extra configuration.
            partitions_start=start,
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
