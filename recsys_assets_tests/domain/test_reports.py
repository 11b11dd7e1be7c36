"""The rendered tables: the same rows in the CLI and the UI, the champion on the gating protocol only."""

from recsys_assets.domain.records import Lift, Manifest, ProtocolResult, TrainingReport
from recsys_assets.domain.reports import evaluation_tables, evaluation_text, model_card, split_table
from recsys_assets_tests.support.records import evaluation, manifest_v2, metrics, summary


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


def test_the_gating_protocols_lifts_show_each_interval_and_the_users_in_the_ui_the_cli_and_the_card():
    lift = Lift(users=40, model=0.3, reference=0.1, lift=2.0, low=1.5, high=2.5)
    champion = Lift(users=40, model=0.3, reference=0.25, lift=0.2, low=-0.05, high=0.45)
    result = evaluation(
        0.3, {"popularity": 0.1}, champion=0.25, shared_items=10, lifts={"popularity": lift}, champion_lift=champion
    )
    table = evaluation_tables(result, "ease")["lifts_global_cut"]
    assert table.splitlines()[2:] == [
        "| popularity | 0.1000 | 0.3000 | +200.0% | [+150.0%, +250.0%] | 40 |",
        "| champion | 0.2500 | 0.3000 | +20.0% | [-5.0%, +45.0%] | 40 |",
    ]
    assert table in evaluation_text(result, "ease", "2024-10-06")
    manifest = Manifest.from_dict(manifest_v2())
    report = TrainingReport(
        model=manifest.model, protocol="global_cut", search=[], search_seconds=1.0, training_seconds=1.0,
        users=50, items=40, interactions=700, host="test",
    )  # fmt: skip
    card = model_card(manifest, {"model": {"ndcg@10": 0.25}}, report)
    assert "| popularity | 0.1250 | 0.2500 | +100.0% | [+80.0%, +120.0%] | 45 |" in card
