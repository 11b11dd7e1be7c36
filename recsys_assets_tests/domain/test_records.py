"""Records round-trip through JSON, old manifests are upgraded, and newer or misspelled ones are refused by name."""

import json

import pytest
from pydantic import ValidationError

from recsys_assets.domain.families.factors import ALSParams
from recsys_assets.domain.params import SelectionParams
from recsys_assets.domain.records import (
    MANIFEST_SCHEMA_VERSION,
    ChampionScore,
    Manifest,
    SearchTrial,
    TrainingReport,
    TrainingRequest,
    upgrade_manifest,
)
from recsys_assets.domain.reports import trials_table
from recsys_assets_tests.support.records import PARAMS, manifest_v1, manifest_v2


def test_manifest_round_trips_through_json():
    manifest = Manifest.from_dict(manifest_v2())
    again = Manifest.from_json(manifest.to_json())
    assert again == manifest
    assert json.loads(manifest.to_json()) == manifest_v2()
    assert again.model.params["factors"] == 24 and again.champion.metrics == {"ndcg@10": 0.2}
    assert again.protocols["per_user"].model == {"ndcg@10": 0.3}


def test_a_manifest_names_any_family_and_completes_its_parameters():
    raw = {**manifest_v2(), "model": {"family": "ease", "params": {"regularization": 300.0}}}
    manifest = Manifest.from_dict(raw)
    assert manifest.model.params == {"half_life_days": None, "regularization": 300.0}
    with pytest.raises(ValidationError, match="family"):
        Manifest.from_dict({**manifest_v2(), "model": {"family": "svd", "params": {}}})


def test_version_1_manifest_is_read_as_version_2():
    raw = manifest_v1()
    manifest = Manifest.from_json(json.dumps(raw))
    assert manifest.schema_version == MANIFEST_SCHEMA_VERSION == 2
    assert manifest.model.family == "als"
    assert manifest.model.params == ALSParams(**PARAMS).model_dump()
    assert manifest.protocol == "per_user" and manifest.protocols == {}  # older manifests had one protocol
    assert manifest.trained_on == {} and manifest.data.full_pairs == 0  # nor a served refit
    current = manifest_v2()
    del current["data"]["full_pairs"], current["metrics"]["lifts"]
    assert manifest == Manifest.from_dict({**current, "protocol": "per_user", "protocols": {}, "trained_on": {}})
    assert "hyperparameters" not in json.loads(manifest.to_json())
    assert "hyperparameters" in raw  # upgrading copies: the caller's dict is left alone
    assert upgrade_manifest(manifest_v2()) == manifest_v2()


@pytest.mark.parametrize("raw", [{}, {"model_name": "jobs"}])
def test_a_json_object_that_is_no_manifest_is_a_value_error_not_a_key_error(raw):
    # `models list` and the registry treat a ValueError as "unreadable manifest"; a KeyError was a traceback.
    with pytest.raises(ValueError, match="not a manifest: no schema_version and no hyperparameters"):
        Manifest.from_dict(raw)


def test_newer_manifest_is_refused_with_a_clear_message():
    raw = {**manifest_v2(), "schema_version": 3}
    with pytest.raises(ValueError, match=r"schema_version 3 is newer than this code understands \(2\)"):
        Manifest.from_dict(raw)
    with pytest.raises(ValueError, match="not a JSON object"):
        Manifest.from_json("[1, 2]")


@pytest.mark.parametrize(
    ("record", "raw", "misspelled"),
    [
        (Manifest, {**manifest_v2(), "modle_name": "jobs"}, "modle_name"),
        (ChampionScore, {"version": "v", "metrics": {}, "metric": {}}, "metric"),
        (
            SearchTrial,
            {"family": "als", "params": PARAMS, "validation_ndgc": 0.5, "k": 10, "seconds": 1.0},
            "validation_ndgc",
        ),
    ],
)
def test_a_misspelled_field_is_refused_by_name(record, raw, misspelled):
    with pytest.raises(ValidationError) as err:
        record.from_json(json.dumps(raw))
    assert misspelled in str(err.value) and "Extra inputs are not permitted" in str(err.value)


def test_a_missing_field_is_refused_by_name():
    raw = manifest_v2()
    del raw["data"]["content_hash"]
    with pytest.raises(ValidationError, match=r"data\.content_hash\s+Field required"):
        Manifest.from_dict(raw)


def test_a_misspelled_hyperparameter_is_refused_by_name():
    raw = manifest_v2()
    raw["model"]["params"] = {**{k: v for k, v in PARAMS.items() if k != "factors"}, "factor": 24}
    with pytest.raises(ValidationError, match="factor"):
        Manifest.from_dict(raw)


def test_training_request_round_trips_through_pipes_extras():
    request = TrainingRequest(
        training_set="s3://b/ts/1", output="s3://b/out/1", search=SelectionParams(families=["ease", "als"])
    )
    extras = json.loads(json.dumps(request.to_extras()))  # what Pipes carries is JSON
    assert TrainingRequest.from_extras(extras) == request


def test_training_report_best_trial_ignores_pruned_trials_and_lists_every_trial():
    def trial(ndcg: float, state: str = "complete") -> SearchTrial:
        return SearchTrial(
            family="ease", params={"regularization": 10.0}, validation_ndcg=ndcg, k=10, seconds=0.1, state=state
        )

    report = TrainingReport(
        model={"family": "ease", "params": {"regularization": 10.0}}, protocol="global_cut",
        search=[trial(0.2), trial(0.4), trial(0.5, "pruned"), trial(0.3)], skipped={"bpr": "not configured"},
        search_seconds=0.5, training_seconds=1.0, users=1, items=1, interactions=1, host="h",
    )  # fmt: skip
    assert report.best_trial().validation_ndcg == 0.4
    assert report.model_copy(update={"search": []}).best_trial() is None
    assert TrainingReport.from_json(report.to_json()) == report
    table = trials_table(report).splitlines()
    assert len(table) == 2 + 4 + 1 and "| 3 | ease |" in table[4] and "pruned" in table[4]
    assert "bpr" in table[-1] and "not configured" in table[-1]


def test_selection_refuses_unknown_families_and_protocols():
    with pytest.raises(ValidationError, match="svd"):
        SelectionParams(families=["svd"])
    with pytest.raises(ValidationError, match="weekly"):
        SelectionParams(protocol="weekly")
