"""Cessation rates by age fitted to SEN2 ceased plans, and what they do to 19-25 plans."""

from __future__ import annotations

import pytest

from model.cessation import cessation_by_age
from model.io import default_scenario_path, load_scenario, read_yaml_file

# Devon, SEN2 reporting year 2025: plans held in January 2024 by age, and plans ceased in
# calendar year 2024 by the age they ceased (19 single; 20 and over pooled).
DEVON_PLANS_JAN_2024 = {17: 577, 18: 450, 19: 268, 20: 162, 21: 124, 22: 56, 23: 17, 24: 12, 25: 1}
DEVON_CEASED_2024 = {18: 123, 19: 134}
DEVON_CEASED_20_AND_OVER_2024 = 272


def test_rates_by_hand() -> None:
    rates = cessation_by_age(DEVON_PLANS_JAN_2024, DEVON_CEASED_2024, DEVON_CEASED_20_AND_OVER_2024)
    assert rates[17] == pytest.approx(123 / 577)  # 0.213
    assert rates[18] == pytest.approx(134 / 450)  # 0.298
    # 272 / (268 + 162 + 124 + 56 + 17 + 12 + 1) = 272 / 640 = 0.425 at every age 19-24
    for a in range(19, 25):
        assert rates[a] == pytest.approx(272 / 640)
    assert 25 not in rates  # the model ends every plan at 25


def test_devon_default_carries_the_fitted_rates() -> None:
    """The shipped Devon rates are these fits, rounded to three decimals (provenance names SEN2)."""
    shipped = read_yaml_file(default_scenario_path())["demand"]["cessation_by_age"]
    fitted = cessation_by_age(
        DEVON_PLANS_JAN_2024, DEVON_CEASED_2024, DEVON_CEASED_20_AND_OVER_2024
    )
    for a, rate in fitted.items():
        assert shipped[a] == pytest.approx(round(rate, 3), abs=1e-12)


def test_a_19_year_old_cohort_thins_at_the_fitted_rate() -> None:
    """100 plans aged 19, no new plans, rate 0.425 at 19-24 (no calibration multiplier):
    57.5 at 20, 33.06 at 21, ... 100 x 0.575^6 = 3.62 at 25, none at 26 (every plan ends)."""
    import numpy as np

    from model.demand import Params, prepare, project

    scn = load_scenario(None, ["meta.horizon_years=7", "demand.calibration.enabled=false"]).scenario
    inputs = prepare(scn, scn.years)
    start = np.zeros((26, len(scn.demand.needs), len(scn.locality_ids)))
    start[19, 0, 0] = 100.0
    inputs.new_mean = lambda params: np.zeros((len(scn.years),) + start.shape)  # type: ignore[method-assign]
    stock, _, ceased = project(inputs, Params(), start)
    ages = [stock[k, 19 + k].sum() for k in range(7)]
    np.testing.assert_allclose(ages, 100 * 0.575 ** np.arange(7))
    assert stock[6].sum() == pytest.approx(100 * 0.575**6)  # aged 25
    assert stock[7].sum() == 0.0  # the plan ends at 25
    assert ceased[1].sum() == pytest.approx(42.5)
