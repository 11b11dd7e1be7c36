"""`open_training_pipes`: the one call the training entrypoint makes works under every launcher."""

import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster_pipes import DagsterPipesWarning, PipesContext

from recsys_assets.pipes.worker import open_training_pipes

WORKER = Path(__file__).with_name("pipes_worker.py")


@pytest.mark.slow
def test_local_subprocess_keeps_the_default_channel():
    """Under PipesSubprocessClient (no store in the params) it behaves exactly like open_dagster_pipes()."""

    @dg.asset
    def trained(context: dg.AssetExecutionContext):
        return (
            dg.PipesSubprocessClient()
            .run(command=[sys.executable, str(WORKER)], context=context, extras={"mode": "ok"})
            .get_materialize_result()
        )

    result = dg.materialize([trained])
    assert result.asset_materializations_for_node("trained")[0].metadata["rows"].value == 3


def test_outside_pipes_it_is_the_no_op_context(monkeypatch):
    monkeypatch.delenv("DAGSTER_PIPES_CONTEXT", raising=False)
    monkeypatch.delenv("DAGSTER_PIPES_MESSAGES", raising=False)
    with pytest.warns(DagsterPipesWarning, match="not launched by a Dagster orchestration process"):
        context = open_training_pipes()
    try:
        context.log.info("ignored")  # the stand-in accepts every call
    finally:
        PipesContext._instance = None  # do not leak the process-wide context into other tests
