"""Item catalogue, scikit-learn item features and the content/hybrid families on a tiny catalogue."""

from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import scipy.sparse as sp

from recsys_assets.domain.families.base import rank_users
from recsys_assets.domain.families.registry import load_model, new_model
from recsys_assets.domain.item_features import (
    ItemFeaturizer,
    _frame,
    build_pipeline,
    fit_features,
)
from recsys_assets.domain.item_side import ItemSource, new_item_share
from recsys_assets.domain.items import ITEMS_SCHEMA, as_of, days_since_epoch, generate_catalogue, measure_quality
from recsys_assets.domain.metrics import evaluate
from recsys_assets.domain.params import SelectionParams, SplitParams
from recsys_assets.domain.records import HoldoutSize, ProtocolResult
from recsys_assets.domain.reports import cold_items_table
from recsys_assets.domain.selection import select_model
from recsys_assets.domain.serving import Bundle, ServingInputError
from recsys_assets.domain.splitting import GLOBAL_CUT, PER_USER, build_training_set
from recsys_assets.domain.synthetic import SyntheticSpec, generate_events
from recsys_assets_tests.support.catalogue import D, catalogue, side_of

# Users 0 and 1 saw backend jobs 0 and 1; users 2 and 3 saw frontend jobs 3 and 4. Items 2 and 5 are cold.
HISTORY = sp.csr_matrix(
    np.array([[1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 0], [0, 0, 0, 1, 1, 0]], dtype=np.float32)
)


@pytest.mark.slow
def test_features_are_sparse_l2_normalised_and_reload_without_pickle_identically():
    items = catalogue()
    featurizer, features = fit_features(items)
    assert sp.issparse(features) and features.dtype == np.float32
    np.testing.assert_allclose(sp.linalg.norm(features, axis=1), 1.0, rtol=1e-6)
    # The saved arrays reproduce the scikit-learn pipeline's own output exactly.
    pipeline = build_pipeline(1, 50_000, 0.5)
    np.testing.assert_allclose(pipeline.fit_transform(_frame(items)).toarray(), features.toarray(), atol=1e-6)
    data = featurizer.to_bytes()
    assert b"pickle" not in data
    reloaded = ItemFeaturizer.from_bytes(data)
    np.testing.assert_allclose(reloaded.transform(items).toarray(), features.toarray(), atol=1e-6)
    # A new posting is transformed with the fitted vocabulary, idf and categories: an unknown word
    # and an unknown location are ignored, and it lands next to the postings that share its words.
    new = pa.table(
        {
            "item_id": ["new"],
            "title": ["django engineer"],
            "description": ["python backend kubernetes"],
            "category": ["backend"],
            "location": ["tokyo"],
            "posted_date": [D],
            "closed_date": pa.array([None], pa.date32()),
        },
        schema=ITEMS_SCHEMA,
    )
    vector = reloaded.transform(new)
    assert vector.shape == (1, featurizer.n_features)
    similarity = (vector @ features.T).toarray().ravel()
    assert similarity[:3].min() > similarity[3:].max()


def test_fitting_features_on_a_catalogue_without_text_fails_with_a_clear_cause():
    items = catalogue().set_column(2, "description", pa.array([""] * 6)).set_column(1, "title", pa.array([""] * 6))
    with pytest.raises(ValueError, match="no posting has usable text"):
        fit_features(items)
    with pytest.raises(ValueError, match="catalogue is empty"):
        fit_features(ITEMS_SCHEMA.empty_table())


def test_content_recommends_the_untouched_posting_of_the_users_own_kind():
    model = new_model("content", {}, items=side_of(catalogue())).fit(HISTORY)
    recs = rank_users(model, HISTORY, k=1)(np.arange(4))
    # The known answer: each user's one unseen posting of their kind, which nobody has interacted with.
    assert recs.ravel().tolist() == [2, 2, 5, 5]
    loaded = load_model("content", model.params.model_dump(), model.to_bytes())
    np.testing.assert_array_equal(
        rank_users(loaded, HISTORY, 3)(np.arange(4)), rank_users(model, HISTORY, 3)(np.arange(4))
    )
    # A user the model never saw is folded in from their history.
    folded = rank_users(model, HISTORY, k=1, known_users=False)(np.arange(4))
    assert folded.ravel().tolist() == [2, 2, 5, 5]


def test_closed_postings_are_never_recommended():
    day = float((D - date(1970, 1, 1)).days)
    items = catalogue(closed={2: D + timedelta(days=3)})
    open_side = side_of(items, reference_day=day + 1)  # posting 2 is still open
    closed_side = side_of(items, reference_day=day + 3)  # posting 2 closed that day
    assert not open_side.closed.any() and closed_side.closed.tolist() == [False, False, True, False, False, False]
    for family, params in (("content", {}), ("hybrid", {"collaborative": "popularity"})):
        recs = rank_users(new_model(family, params, items=closed_side).fit(HISTORY), HISTORY, 6)(np.arange(4))
        assert 2 not in recs, family


def test_hybrid_places_cold_postings_only_through_its_content_fallback():
    side = side_of(catalogue())
    cold = {2, 5}
    collaborative_only = new_model(
        "hybrid", {"collaborative": "item_knn", "weight": 1.0, "fallback_below": 0}, items=side
    ).fit(HISTORY)
    assert not cold & set(rank_users(collaborative_only, HISTORY, 2)(np.arange(4)).ravel().tolist())
    fallback = new_model("hybrid", {"collaborative": "item_knn", "weight": 0.7, "fallback_below": 1}, items=side)
    fallback.fit(HISTORY)
    assert rank_users(fallback, HISTORY, 1)(np.arange(4)).ravel().tolist() == [2, 2, 5, 5]
    loaded = load_model("hybrid", fallback.params.model_dump(), fallback.to_bytes())
    np.testing.assert_array_equal(
        rank_users(loaded, HISTORY, 3)(np.arange(4)), rank_users(fallback, HISTORY, 3)(np.arange(4))
    )


def test_catalogue_quality_counts_duplicates_missing_text_and_inverted_windows():
    items = catalogue()
    bad = pa.concat_tables([items, items.slice(0, 1)])
    bad = bad.set_column(1, "title", pa.array(["", *bad["title"].to_pylist()[1:]]))
    bad = bad.set_column(2, "description", pa.array([None, *bad["description"].to_pylist()[1:]]))
    bad = bad.set_column(6, "closed_date", pa.array([None, D - timedelta(days=1), *[None] * 5], pa.date32()))
    quality = measure_quality(bad)
    assert (quality.duplicate_ids, quality.missing_text, quality.closed_before_posted) == (1, 1, 1)
    assert measure_quality(items).duplicate_ids == 0
    blank = items.set_column(0, "item_id", pa.array(["", " ", None, "NA", "job4", "job5"]))
    assert (measure_quality(blank).null_ids, measure_quality(blank).duplicate_ids) == (3, 0)


def test_snapshot_as_of_a_day_hides_later_postings_and_later_closings():
    items = catalogue(closed={0: D + timedelta(days=5), 1: D + timedelta(days=1)})
    items = items.set_column(5, "posted_date", pa.array([D, D, D, D, D, D + timedelta(days=4)], pa.date32()))
    snapshot = as_of(items, D + timedelta(days=2))
    assert snapshot["item_id"].to_pylist() == [f"job{i}" for i in range(5)]
    assert snapshot["closed_date"].to_pylist() == [None, D + timedelta(days=1), None, None, None]


SPEC = SyntheticSpec(n_users=300, n_items=200, n_days=10, events_per_day=1500, seed=5, end_date=date(2026, 3, 10))


def test_synthetic_catalogue_covers_the_events_items_with_text_of_their_segment():
    events, items = generate_events(SPEC), generate_catalogue(SPEC)
    assert set(pc.unique(events["item_id"]).to_pylist()) <= set(items["item_id"].to_pylist())
    assert measure_quality(items).duplicate_ids == 0 and measure_quality(items).missing_text == 0
    # Postings of one category share their words: their features are closer than across categories.
    _, features = fit_features(items)
    category = np.asarray(items["category"].to_pylist())
    same = category[:, None] == category[None, :]
    similarity = (features @ features.T).toarray()
    assert similarity[same].mean() > 2 * similarity[~same].mean()


def test_training_set_keeps_catalogue_items_unseen_in_training_as_cold_items():
    events, items = generate_events(SPEC), generate_catalogue(SPEC)
    without = build_training_set(events, SplitParams(cut_days=2)).protocols[GLOBAL_CUT]
    with_catalogue = build_training_set(events, SplitParams(cut_days=2), items["item_id"]).protocols[GLOBAL_CUT]
    cold = with_catalogue.cold_holdout
    assert cold.nnz > without.cold_holdout.nnz and with_catalogue.counts.cold_item_pairs == cold.nnz
    # Cold columns have no training interaction; the warm holdout is what it was without the catalogue.
    assert with_catalogue.train[:, np.unique(cold.indices)].nnz == 0
    assert with_catalogue.holdout.nnz == without.holdout.nnz


@pytest.mark.slow
def test_selection_skips_content_families_without_features_and_lets_a_hybrid_win_with_them():
    events, items = generate_events(SPEC), generate_catalogue(SPEC)
    data = build_training_set(events, SplitParams(cut_days=2), items["item_id"])
    protocol = data.protocols[GLOBAL_CUT]
    settings = SelectionParams(families=["popularity", "item_knn", "content", "hybrid"], trials_per_family=2)
    logs: list[str] = []
    plain = select_model(protocol, settings, logs.append)
    assert set(plain.skipped) == {"content", "hybrid"} and "no item features" in plain.skipped["content"]
    _, features = fit_features(items)
    source = ItemSource(
        features, items["item_id"], days_since_epoch(items["posted_date"]), days_since_epoch(items["closed_date"])
    )
    fit_day, train_day = protocol.fit_reference_day, protocol.train_reference_day
    chosen = select_model(protocol, settings, logs.append, items=source.side(data.item_ids, fit_day))
    hybrid = [t for t in chosen.trials if t.family == "hybrid"]
    assert hybrid and hybrid[0].params["collaborative"] in ("popularity", "item_knn")
    # Evaluated on the holdout: a collaborative model never hits a cold item, content-based ones do.
    side = source.side(data.item_ids, train_day)
    cold = {}
    for family, params in (("item_knn", {}), ("hybrid", {"collaborative": "item_knn", "weight": 0.6})):
        model = new_model(family, params, items=side).fit(protocol.train, protocol.train_ages)
        cold[family] = evaluate(rank_users(model, protocol.train, 10), protocol.cold_holdout, 10)["recall@10"]
    assert cold["item_knn"] == 0.0 and cold["hybrid"] > 0.2


def test_new_item_share_and_cold_item_table():
    posted = np.array([10.0, 18.0, np.nan])
    recs = np.array([[0, 1, -1], [1, 2, -1]])
    assert new_item_share(recs, posted, reference_day=20.0, days=7) == pytest.approx(2 / 4)
    metrics = {"recall@10": 0.5, "ndcg@10": 0.25, "users_evaluated": 3.0}
    result = ProtocolResult(
        model=metrics,
        baselines={},
        holdout=HoldoutSize(users=3, pairs=3),
        cold_items={"model": metrics, "item_knn": {**metrics, "recall@10": 0.0}},
        new_item_share={"model": 0.5},
        new_item_days=7,
    )
    table = cold_items_table(result.cold_items, result.new_item_share, result.new_item_days, 10)
    assert "| model | 0.5000 | 0.2500 | 3 | 50.00% |" in table and "| item_knn | 0.0000 |" in table


def test_closed_postings_are_filtered_only_at_a_global_cut_day():
    events = generate_events(SPEC)
    data = build_training_set(events, SplitParams(cut_days=2))
    end = data.counts.end_day
    cut, per_user = data.protocols[GLOBAL_CUT], data.protocols[PER_USER]
    assert (cut.fit_reference_day, cut.train_reference_day) == (end - 4, end - 2) == (cut.fit_end, cut.train_end)
    assert (per_user.fit_reference_day, per_user.train_reference_day) == (None, None)
    assert per_user.fit_end == per_user.train_end == end


@pytest.mark.parametrize("family", ["content", "hybrid"])
def test_serving_recommends_a_posting_that_appeared_after_the_bundle_from_its_features(family):
    items = catalogue()
    known = items.slice(0, 5)  # job5 (frontend) is posted after the model was trained
    featurizer, features = fit_features(known)
    source = ItemSource(
        features, known["item_id"], days_since_epoch(known["posted_date"]), days_since_epoch(known["closed_date"])
    )
    history = HISTORY[:, :5]
    params = {"collaborative": "item_knn", "weight": 0.7} if family == "hybrid" else {}
    model = new_model(family, params, items=source.side(known["item_id"].combine_chunks(), None)).fit(history)
    bundle = Bundle(
        uri="memory",
        version="v1",
        model=load_model(family, model.params.model_dump(), model.to_bytes()),
        user_ids=pa.array(["u0", "u1", "u2", "u3"]),
        item_ids=known["item_id"].combine_chunks(),
        featurizer=ItemFeaturizer.from_bytes(featurizer.to_bytes()),
    )
    assert "job5" not in bundle.recommend("u2", ["job3", "job4"], n=5)
    assert bundle.add_postings(items) == 1 and bundle.add_postings(items) == 0
    assert bundle.recommend("u2", ["job3", "job4"], n=1) == ["job5"]
    assert bundle.recommend("someone-new", ["job3"], n=2)[0] in ("job4", "job5")
    assert bundle.recommend("u0", ["job0", "job1"], n=1) == ["job2"]


def content_bundle(known: pa.Table) -> Bundle:
    featurizer, features = fit_features(known)
    source = ItemSource(
        features, known["item_id"], days_since_epoch(known["posted_date"]), days_since_epoch(known["closed_date"])
    )
    model = new_model("content", {}, items=source.side(known["item_id"].combine_chunks(), None)).fit(HISTORY[:, :5])
    return Bundle(
        uri="memory",
        version="v1",
        model=model,
        user_ids=pa.array(["u0", "u1", "u2", "u3"]),
        item_ids=known["item_id"].combine_chunks(),
        featurizer=ItemFeaturizer.from_bytes(featurizer.to_bytes()),
    )


@pytest.mark.parametrize(
    ("change", "counted"),
    [
        (lambda t: t.set_column(0, "item_id", pa.array([None, "n1"], pa.string())), "1 without an id"),
        (lambda t: t.set_column(0, "item_id", pa.array(["  ", "n1"], pa.string())), "1 without an id"),
        (lambda t: t.set_column(0, "item_id", pa.array(["n1", "n1"])), "1 repeated ids"),
        (
            lambda t: t.set_column(6, "closed_date", pa.array([D, None], pa.date32())),
            "1 closed on or before 2026-03-02",
        ),
        (
            lambda t: t.set_column(6, "closed_date", pa.array([None, D - timedelta(days=1)], pa.date32())),
            "1 closed before they were posted",
        ),
    ],
)
def test_add_postings_refuses_null_repeated_and_closed_postings_with_counts(change, counted):
    bundle = content_bundle(catalogue().slice(0, 5))
    fresh = catalogue().slice(4, 2).set_column(0, "item_id", pa.array(["n0", "n1"]))
    with pytest.raises(ServingInputError, match=counted):
        bundle.add_postings(change(fresh), today=D + timedelta(days=1))
    assert len(bundle.item_ids) == 5  # nothing was added
    assert bundle.add_postings(fresh, today=D + timedelta(days=1)) == 2


def test_a_collaborative_bundle_refuses_new_postings_with_the_reason():
    bundle = Bundle(
        uri="memory",
        version="v1",
        model=new_model("popularity").fit(HISTORY),
        user_ids=pa.array(["u0", "u1", "u2", "u3"]),
        item_ids=catalogue()["item_id"].combine_chunks(),
    )
    with pytest.raises(ValueError, match="no item feature transformer"):
        bundle.add_postings(catalogue())


@pytest.mark.slow
def test_the_recency_prior_prefers_the_newer_of_two_equally_similar_postings():
    items = catalogue()
    # job2 and job3 become twin backend postings; job3 was posted 20 days after job2.
    items = items.set_column(
        2,
        "description",
        pa.array(
            [
                *items["description"].to_pylist()[:3],
                "python django backend posting2",
                *items["description"].to_pylist()[4:],
            ]
        ),
    )
    items = items.set_column(3, "category", pa.array(["backend"] * 4 + ["frontend"] * 2))
    items = items.set_column(1, "title", pa.array(["backend engineer"] * 4 + ["frontend engineer"] * 2))
    items = items.set_column(4, "location", pa.array(["berlin"] * 6))
    items = items.set_column(5, "posted_date", pa.array([D, D, D, D + timedelta(days=20), D, D], pa.date32()))
    _, features = fit_features(items)
    source = ItemSource(
        features, items["item_id"], days_since_epoch(items["posted_date"]), days_since_epoch(items["closed_date"])
    )
    day = float((D - date(1970, 1, 1)).days) + 21
    side = source.side(items["item_id"].combine_chunks(), None, age_day=day)
    history = sp.csr_matrix(np.array([[1, 1, 0, 0, 0, 0]], dtype=np.float32))
    plain = new_model("content", {}, items=side).fit(history)
    fresh = new_model("content", {"recency_half_life_days": 7.0}, items=side).fit(history)
    scores = plain.scores(np.array([0]), history)[0]  # type: ignore[attr-defined]
    assert scores[2] == pytest.approx(scores[3], rel=1e-5)  # the text cannot tell them apart
    assert rank_users(fresh, history, 1)(np.array([0])).ravel().tolist() == [3]
