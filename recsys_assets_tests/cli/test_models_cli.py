"""`python -m recsys_assets models ...` on the embedded default: list, show, diff, promote, merge, reject, rollback."""

from __future__ import annotations

import dagster as dg
import pytest

from recsys_assets.cli import main
from recsys_assets.resources import build_resources
from recsys_assets.settings import SETTINGS
from recsys_assets_tests.support.bundles import publish_version
from recsys_assets_tests.support.environment import local_env


@pytest.fixture
def store(tmp_path, monkeypatch):
    for name, value in local_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    store = build_resources()["model_store"]
    publish_version(store, "v1", ndcg=0.20)
    publish_version(store, "v2", ndcg=0.25)
    publish_version(store, "v3", ndcg=0.22)
    return store


def models(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["models", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def champion(store) -> str | None:
    pointer = store.read_champion(SETTINGS.model_name)
    return pointer["version"] if pointer else None


@pytest.mark.slow
def test_promote_merge_reject_rollback_and_list(store, capsys):
    code, out, _ = models(capsys, "promote", "v1")
    assert code == 0 and "v1 proposed (opened)" in out and champion(store) is None
    assert (
        models(capsys, "merge", "v1")[1]
        == "v1 -> released: pull request " + out.split(": ", 1)[1].split("\n")[0] + " merged\n"
    )
    assert champion(store) == "v1"

    models(capsys, "promote", "v2")
    code, out, _ = models(capsys, "merge", "v2")
    assert "v2 -> released" in out and "v1 -> superseded: replaced by v2" in out and champion(store) == "v2"

    models(capsys, "promote", "v3")
    code, out, _ = models(capsys, "reject", "v3")
    assert code == 0 and "v3 rejected" in out and champion(store) == "v2"
    code, _, err = models(capsys, "promote", "v3")
    assert code == 2 and "v3 is rejected: it cannot become proposed" in err

    code, out, _ = models(capsys, "rollback")  # back to v1, through a new proposal
    assert (
        code == 0
        and "v1 proposed (opened)" in out
        and out.split(": ", 1)[1].rstrip().split("\n")[0].endswith("v1-r2/PULL_REQUEST.md")
    )
    assert champion(store) == "v2"
    assert "v1 -> released" in models(capsys, "merge", "v1")[1] and champion(store) == "v1"

    code, out, _ = models(capsys, "list")
    assert code == 0 and out.startswith("champion: v1")
    rows = {line.split(" | ")[0].strip("| "): line for line in out.splitlines() if line.startswith("| v")}
    assert " released " in rows["v1"] and " superseded " in rows["v2"] and " rejected " in rows["v3"]
    assert "2026-02-01..2026-02-28" in rows["v1"] and "ndcg@10 0.2000" in rows["v1"] and "PULL_REQUEST.md" in rows["v1"]

    code, out, _ = models(capsys, "show", "v1")
    assert code == 0 and "v1: released" in out
    assert [line.split()[1] for line in out.splitlines() if line.startswith("20")] == [
        "proposed", "released", "superseded", "proposed", "released",
    ]  # fmt: skip
    code, out, _ = models(capsys, "diff", "v1", "v2")
    assert code == 0 and "| ndcg@10 | 0.2000 | 0.2500 | +0.0500 |" in out and "| family | als | als | same |" in out


def test_bad_input_gives_one_clear_line(store, capsys):
    assert models(capsys, "show", "v9")[1:] == ("", "models show: no complete bundle " + f"{SETTINGS.model_name}/v9 in "
                                                 + store.uri(f"models/{SETTINGS.model_name}/") + " (unknown version, or its upload never finished)\n")  # fmt: skip
    assert "no earlier released version" in models(capsys, "rollback")[2]
    assert "v1 is not proposed: no open proposal" in models(capsys, "reject", "v1")[2]
    assert "v1 is not proposed" in models(capsys, "merge", "v1")[2]
    store.put_object(f"models/{SETTINGS.model_name}/v8/model_card.md", b"# an upload that died")
    code, _, err = models(capsys, "promote", "v8")
    assert code == 2 and "upload never finished" in err


@pytest.mark.slow
def test_merge_and_reject_show_on_model_release_at_once(store, capsys, tmp_path, monkeypatch):
    # The persistent instance the UI reads (DAGSTER_HOME), as after `make demo`.
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    models(capsys, "promote", "v1")
    models(capsys, "merge", "v1")
    models(capsys, "promote", "v2")
    models(capsys, "reject", "v2")

    with dg.DagsterInstance.get() as instance:
        records = instance.fetch_observations(dg.AssetKey("model_release"), limit=10).records
    latest_first = [{name: value.value for name, value in r.asset_observation.metadata.items()} for r in records]
    assert [(m["version"], m["state"], m["champion"]) for m in latest_first] == [
        ("v2", "rejected", "v1"),
        ("v2", "proposed", "v1"),
        ("v1", "released", "v1"),
        ("v1", "proposed", "none"),
    ]
    assert all(r.partition_key == "2026-02-28" for r in records)


@pytest.mark.parametrize("command", [["promote"], ["show"], ["merge"], ["reject"], ["rollback"], ["diff", "v1"]])
def test_a_version_argument_is_a_version_name_never_a_path(store, capsys, tmp_path, command):
    # A folder outside the store holding a manifest: `../../outside` once made promote write beside it.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "manifest.json").write_bytes(store.get_object(f"models/{SETTINGS.model_name}/v1/manifest.json"))
    before = sorted(p for p in tmp_path.rglob("*") if "model_store" not in p.parts)
    code, out, err = models(capsys, *command, "../../outside")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "version='../../outside' is not a safe name" in err
    assert sorted(p for p in tmp_path.rglob("*") if "model_store" not in p.parts) == before
