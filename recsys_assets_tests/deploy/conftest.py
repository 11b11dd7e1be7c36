"""One render of the Helm chart per session: `helm template` validates the values schema (about 1.5 s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recsys_assets_tests.deploy import replay


@pytest.fixture(scope="session")
def chart(tmp_path_factory) -> Path:
    """The vendored official chart, its values schema pointed at kubernetes-validate's local definitions."""
    return replay.prepare_chart(tmp_path_factory.mktemp("chart"))


@pytest.fixture(scope="session")
def manifests(chart) -> list[dict[str, Any]]:
    """deploy/helm/deploy.sh's render of deploy/helm/values.yaml with the test images."""
    return replay.render_helm(chart)
