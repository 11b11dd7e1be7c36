"""The instance pieces subclass Dagster internals: they are tested against one Dagster version, pinned everywhere."""

import re
from importlib.metadata import version

from recsys_assets.instance import TESTED_DAGSTER_VERSION
from recsys_assets_tests.support.environment import REPO_ROOT


def test_the_installed_and_pinned_dagster_is_the_one_the_instance_pieces_are_tested_against():
    # A Dagster upgrade changes this constant on purpose, after instance/'s tests pass on the new version.
    assert version("dagster") == TESTED_DAGSTER_VERSION
    pins = re.findall(r'"dagster==([^"]+)"', (REPO_ROOT / "setup.py").read_text())
    assert pins == [TESTED_DAGSTER_VERSION]
