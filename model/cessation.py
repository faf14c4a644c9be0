"""Cessation rates by age fitted to SEN2 ceased plans: when young people leave their plan.

SEN2 counts plans ceased in a calendar year by the age at which they ceased (single years to 19,
then "20 and over") and plans held each January by age. A young person aged a in January who
ceases during the year has usually turned a + 1, so the model's rate at age a (the share ceasing
at the end of the year they are a: ``demand.cessation_by_age``) is ceased at age a + 1 / plans
aged a. Past 19 the ages are pooled: ceased at 20 and over / plans aged 19-25, one rate for
19-24 (plans cease or move to adult services; age 25 always ends a plan).
"""

from __future__ import annotations

from collections.abc import Mapping

POOLED_FROM = 19  # SEN2 pools ceased plans at "20 and over": model ages 19 and older
LAST_RATE_AGE = 24  # at 25 every plan ends (the model forces it)


def cessation_by_age(
    plans_by_age: Mapping[int, float],
    ceased_by_age: Mapping[int, float],
    ceased_pooled: float | None = None,
    ages: range = range(17, POOLED_FROM),
) -> dict[int, float]:
    """``demand.cessation_by_age`` rates from January plans by age and plans ceased that year.

    plans_by_age: plans held in January by age; ceased_by_age: plans ceased during the calendar
    year by age ceased (single years); ceased_pooled: plans ceased at 20 and over. Returns rates
    for ``ages`` (ceased at a + 1 / plans aged a) and, with ``ceased_pooled``, one pooled rate
    for ages 19-24 (ceased at 20 and over / plans aged 19-25).
    """
    out: dict[int, float] = {}
    for a in ages:
        held = float(plans_by_age.get(a, 0.0))
        if held > 0:
            out[a] = min(1.0, float(ceased_by_age.get(a + 1, 0.0)) / held)
    if ceased_pooled is not None:
        held = sum(float(v) for a, v in plans_by_age.items() if a >= POOLED_FROM)
        if held > 0:
            rate = min(1.0, float(ceased_pooled) / held)
            out.update({a: rate for a in range(POOLED_FROM, LAST_RATE_AGE + 1)})
    return out
