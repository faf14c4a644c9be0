"""The checks a scenario must pass before any stage runs, beyond what the schema can say per field.

``validate`` and ``run`` both reach these through ``model.io.validate_mapping``, so a scenario that
validates never fails a stage on its inputs. The schema (``model.scenario``) holds the per-field
bounds and the cross-field rules; this module lays the demand rates out as the demand stage will
and checks their size, which needs the stage's own arithmetic (levers multiply, growth compounds).
"""

from __future__ import annotations

import numpy as np

from .demand import prepare, span_years
from .errors import ScenarioError
from .scenario import MAX_PLACES, Scenario

# Expected new plans in one year across the whole LA: ten times every EHCP in England. Above it the
# Monte Carlo noise (Poisson) cannot be drawn and no plan figure would mean anything.
MAX_NEW_PLANS_PER_YEAR = 10 * MAX_PLACES


def demand_size_problems(scn: Scenario) -> list[tuple[str, str]]:
    """(key.path, message) for demand inputs whose combination is absurd (or the stage's own rule
    problems, reported with their key path); empty when the demand stage can run on them."""
    try:
        inputs = prepare(scn, span_years(scn))
    except ScenarioError as e:
        return [(p.path, p.message) for p in e.problems]
    growth = max(scn.demand.growth, 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        per_year = inputs.rate.sum(axis=(1, 2, 3)) * (1.0 + growth) ** inputs.growth_exp
    worst = float(np.max(per_year)) if per_year.size else 0.0
    if not np.isfinite(worst) or worst > MAX_NEW_PLANS_PER_YEAR:
        shown = "too many to count" if not np.isfinite(worst) else f"{worst:.3g}"
        return [
            (
                "demand",
                f"expected new plans in one year reach {shown}, more than "
                f"{MAX_NEW_PLANS_PER_YEAR:.0e}: check requests_per_1000, growth, levers and "
                "population.base_0_25",
            )
        ]
    return []
