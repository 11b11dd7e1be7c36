"""The rendered tables: the same rows in the CLI and the UI, the champion on the gating protocol only."""

from recsys_assets.domain.records import ProtocolResult
from recsys_assets.domain.reports import evaluation_tables, evaluation_text, split_table
from recsys_assets_tests.support.records import evaluation, metrics, summary


def with_per_user(result):
    per_user = ProtocolResult(model=metrics(0.4), baselines={"popularity": metrics(0.1)}, holdout=result.holdout)
    return result.model_copy(update={"protocols": {"per_user": per_user, **result.protocols}})


def test_each_protocol_has_one_table_and_only_the_gating_one_shows_the_champion():
    result = with_per_user(evaluation(0.3, {"popularity": 0.1}, champion=0.25, shared_items=10))
    tables = evaluation_tables(result, "ease")
    assert set(tables) == {"metrics_per_user", "metrics_global_cut"}
    assert tables["metrics_global_cut"].splitlines()[2:] == [
        "| model (ease) | 0.1500 | 0.3000 | 0.3000 | 0.1000 | 0.5000 |",
        "| popularity | 0.0500 | 0.1000 | 0.1000 | 0.0333 | 0.5000 |",
        "| champion v-champion | 0.1250 | 0.2500 | 0.2500 | 0.0833 | 0.5000 |",
    ]
    assert "champion" not in tables["metrics_per_user"]
    text = evaluation_text(result, "ease", "2024-10-06")
    # The CLI prints the same tables under one header per protocol, the gating one marked.
    assert tables["metrics_per_user"] in text and tables["metrics_global_cut"] in text
    assert "global_cut holdout of partition 2024-10-06: 40 users, k=10, gates the release" in text
    assert "per_user holdout of partition 2024-10-06: 40 users, k=10\n" in text


def test_the_split_table_lists_every_protocol():
    assert split_table(summary()).splitlines()[2:] == [
        "| per_user | 500 | 100 | 600 | 150 | 40 | 10 | 20 |",
        "| global_cut | 500 | 100 | 600 | 150 | 40 | 10 | 20 |",
    ]
