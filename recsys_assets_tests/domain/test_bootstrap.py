"""The paired bootstrap of a lift, on cases whose interval is known in closed form."""

import numpy as np
import pytest

from recsys_assets.domain.bootstrap import GROUPS, paired_lift


@pytest.mark.parametrize("users", [400, 40 * GROUPS])
def test_the_interval_of_a_mean_difference_is_1_96_standard_errors(users):
    # The reference scores 1 for everyone, the model 1.5 for half the users and 0.5 for the other half:
    # the lift is the mean of +-0.5 (0), whose standard error is 0.5 / sqrt(users).
    reference = np.ones(users)
    model = np.where(np.arange(users) % 2 == 0, 1.5, 0.5)
    lift = paired_lift(model, reference, seed=3)
    half_width = 1.96 * 0.5 / np.sqrt(users)
    assert lift.users == users and lift.lift == pytest.approx(0.0)
    assert lift.low == pytest.approx(-half_width, rel=0.15) and lift.high == pytest.approx(half_width, rel=0.15)


def test_a_model_a_constant_factor_better_on_every_user_has_no_uncertainty():
    reference = np.random.default_rng(0).random(300) + 0.1
    lift = paired_lift(reference * 1.2, reference)
    assert lift.lift == pytest.approx(0.2) and lift.low == pytest.approx(0.2) and lift.high == pytest.approx(0.2)
    assert lift.text() == "+20.0% [+20.0%, +20.0%]"


def test_pairing_removes_the_users_own_variance():
    # Users differ a lot, the model adds 0.01 to each: unpaired the difference would be lost in the spread.
    reference = np.random.default_rng(1).random(500)
    lift = paired_lift(reference + 0.01, reference)
    assert lift.low is not None and lift.low > 0


def test_a_reference_that_scores_nothing_has_no_ratio():
    lift = paired_lift(np.array([0.5, 0.0]), np.zeros(2))
    assert lift.lift is None and lift.significantly_above(0.05) and not lift.significantly_below(-0.02)
    assert lift.text() == "0.2500 against 0.0000"


def test_scores_of_different_users_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        paired_lift(np.ones(3), np.ones(4))
