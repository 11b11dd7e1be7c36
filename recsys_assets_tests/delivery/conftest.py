"""The delivery tests' job board: the embedded warehouse seeded with a small synthetic board."""

from typing import Any

import pytest

from recsys_assets_tests.support.board import seeded_board


@pytest.fixture
def board(tmp_path) -> dict[str, Any]:
    return seeded_board(tmp_path)
