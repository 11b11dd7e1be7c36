"""The rendered tables: the same rows in the CLI and the UI, the champion on the gating protocol only."""

import re

import pytest

from recsys_assets.domain.records import Lift, Manifest, ProtocolResult, SearchTrial, TrainingReport
from recsys_assets.domain.reports import (
    evaluation_tables,
    evaluation_text,
    markdown_text,
    model_card,
    pull_request_body,
    split_table,
)
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


HOSTILE = "1.0\n# Pwned\r\n<img src=x onerror=alert(1)> | [click](http://evil) `tick` &amp;"


def hostile_documents() -> list[str]:
    raw = manifest_v2()
    raw |= {"code_version": HOSTILE, "image": HOSTILE, "trained_on": {"model.npz": HOSTILE}}
    raw["metrics"] = {"model": metrics(0.25), "baselines": {"popularity": metrics(0.125)}}
    for protocol in raw["protocols"].values():
        protocol |= {"model": metrics(0.25), "baselines": {"popularity": metrics(0.125)}}
    manifest = Manifest.from_dict(raw)
    report = TrainingReport(
        model=manifest.model,
        protocol="global_cut",
        search=[SearchTrial(family="als", params={"factors": HOSTILE}, validation_ndcg=0.2, k=10, seconds=1.0)],
        skipped={"bpr": HOSTILE},
        search_seconds=1.0,
        training_seconds=1.0,
        users=5,
        items=5,
        interactions=10,
        host=HOSTILE,
    )
    return [
        model_card(manifest, {"model (als)": metrics(0.25)}, report),
        pull_request_body(manifest, None, "file:///store/<b>card</b>.md"),
    ]


@pytest.mark.parametrize("document", [0, 1], ids=["model card", "pull request body"])
def test_text_from_settings_or_data_cannot_inject_markdown_or_html(document):
    text = hostile_documents()[document]
    assert "<img" not in text and "<b>" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert not any(line.startswith("# Pwned") for line in text.splitlines())
    assert not re.search(r"(?<!\\)\]\(http://evil", text) and "&amp;amp;" in text
    # A value cannot end its table cell: every row of a table keeps its header's number of cells.
    for table in re.findall(r"(?:^\|.*\|$\n?)+", text, flags=re.MULTILINE):
        widths = {len(re.split(r"(?<!\\)\|", row)) for row in table.strip().splitlines()}
        assert len(widths) == 1, table


def test_markdown_text_leaves_ordinary_values_alone():
    for value in ("item_knn", "0.1.0+abc", "ghcr.io/org/img:1.2@sha256:ff", "s3://bucket/models/jobs/v1/model_card.md"):
        assert markdown_text(value) == value
