"""One protocol's scoring: every model ranked once for the holdout and cold-item users, closed postings left out."""

import numpy as np
import scipy.sparse as sp

from recsys_assets.domain.evaluation import champion_comparison, score_protocol
from recsys_assets.domain.families.registry import new_model
from recsys_assets_tests.support.families import BLOCK, block_matrix, hand_split
from recsys_assets_tests.support.records import evaluation


def test_every_model_is_scored_on_the_same_holdout_and_cold_items_and_closed_postings_are_left_out():
    train, holdout = block_matrix()
    n_users, n_items = train.shape
    # One new posting per block that nobody trained on; the first user of each block applied to it.
    train = sp.csr_matrix(sp.hstack([train, sp.csr_matrix((n_users, 2))]))
    holdout = sp.csr_matrix(sp.hstack([holdout, sp.csr_matrix((n_users, 2))]))
    cold = sp.csr_matrix((np.ones(2, np.float32), ([0, BLOCK], [n_items, n_items + 1])), shape=train.shape)
    split = hand_split(train, holdout, cold_holdout=cold)
    knn = new_model("item_knn", {"neighbours": 10}).fit(train)
    popularity = new_model("popularity").fit(train)
    # The split's train data ends on day 0: the known postings are 30 days old, the new ones 3.
    posted = np.array([-30.0] * n_items + [-3.0, -3.0])
    result, _ = score_protocol(split, knn, {"popularity": popularity}, k=2, posted=posted, new_item_days=7)
    assert result.model["recall@2"] == 1.0 and result.baselines["popularity"]["recall@2"] < 1.0
    assert result.holdout.users == n_users and result.holdout.pairs == holdout.nnz
    # A collaborative model never ranks a posting it did not train on: zero on cold items, by construction.
    assert result.cold_items["model"]["recall@2"] == 0.0 and result.cold_holdout.pairs == 2
    assert result.new_item_share == {"model": 0.0, "popularity": 0.0} and result.new_item_days == 7
    everything_new = np.full(n_items + 2, -3.0)
    shares = score_protocol(split, knn, {}, k=2, posted=everything_new, new_item_days=7)[0].new_item_share
    assert shares == {"model": 1.0}

    # Closing each user's held-out item leaves item-kNN with nothing to hit.
    closed = np.zeros(n_items + 2, dtype=bool)
    closed[np.unique(holdout.indices)] = True
    result, _ = score_protocol(split, knn, {}, k=2, posted=posted, new_item_days=7, closed=closed)
    assert result.model["recall@2"] == 0.0 and result.baselines == {}


def test_the_champion_comparison_says_how_it_went_in_one_line():
    assert champion_comparison(evaluation(0.2, {})) == "no champion promoted yet"
    assert champion_comparison(evaluation(0.2, {}, champion=0.1, shared_items=12)) == (
        "champion v-champion scored on 12 shared items"
    )
    assert "scored as no overlap" in champion_comparison(evaluation(0.2, {}, champion=0.0, shared_items=0))
    assert champion_comparison(evaluation(0.2, {}, unavailable="unreadable")) == "impossible: unreadable"
