"""The optimised plan's saving broken down by cause and by funding source.

Three causes, measured against a third plan, the LP re-solved with no builds (routing only):
- ``routing``: children under 16 placed better within committed places (spare places used,
  cheaper suitable settings, nearer providers): unmitigated - no-builds for the school phases,
  with the place funding of the empty commissioned places this fills;
- ``post16``: young people aged 16-25 placed better within committed places (FE, sixth forms,
  special-school sixth forms): unmitigated - no-builds for the post-16 and 19+ phases, with the
  place funding of empty places in settings only they use (FE);
- ``builds``: what the new places add, for every age, net of their capital and of the place
  funding of new places: no-builds - optimised.
The three add up exactly to the total saving (other high-needs spend and the committed
pipeline's capital are the same in every variant).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..costs import fy_weights, transport_cost_per_place, unit_cost_array
from ..placements import PlacementPlan
from ..scenario import PHASES, Scenario

CAUSES = ("routing", "post16", "builds")
POST16_PHASES = ("post16", "post19")


def phase_costs(scn: Scenario, plan: PlacementPlan) -> pd.DataFrame:
    """Placement (HNB) and transport cost of a plan over the reported financial years, by phase.

    Columns: phase, funding_source, cost_line, cost_gbp. Adds up to the placements and transport
    lines of ``model.costs.cost_table``.
    """
    w = fy_weights(len(scn.years)).sum(0)  # [T] share of each academic year that is reported
    hnb = np.einsum("tlmnps,tlnps,t->p", plan.places, unit_cost_array(scn, plan), w)
    by_route = np.einsum("tlmnps->tlmps", plan.places)
    tr = np.einsum("tlmps,tlms,t->p", by_route, transport_cost_per_place(scn), w)
    return pd.DataFrame(
        {
            "phase": list(PHASES) * 2,
            "funding_source": ["hnb"] * len(PHASES)
            + [scn.costs.transport.funding_source] * len(PHASES),
            "cost_line": ["placements"] * len(PHASES) + ["transport"] * len(PHASES),
            "cost_gbp": np.concatenate([hnb, tr]),
        }
    )


def cause_pieces(scn: Scenario, plan: PlacementPlan, costs: pd.DataFrame) -> pd.Series:
    """A plan's cost split into the pieces the causes are made of: (group, funding_source) -> GBP.

    group: ``pre16`` / ``post16`` (placements and transport by phase), ``vacant`` (place funding
    of empty commissioned places), ``capital_builds``; other lines are equal across variants.
    """
    ph = phase_costs(scn, plan)
    ph["group"] = np.where(ph["phase"].isin(POST16_PHASES), "post16", "pre16")
    c = costs[costs["cost_line"].isin(["vacant_places", "capital_builds"])].copy()
    c["group"] = c["cost_line"].map({"vacant_places": "vacant", "capital_builds": "capital_builds"})
    # empty places in settings that serve only ages 16-25 (FE) belong to the post-16 cause
    post16_only = [
        k for k, st in scn.settings.items() if st.phases and set(st.phases) <= set(POST16_PHASES)
    ]
    c.loc[(c["group"] == "vacant") & c["setting"].isin(post16_only), "group"] = "vacant_post16"
    both = pd.concat(
        [ph[["group", "funding_source", "cost_gbp"]], c[["group", "funding_source", "cost_gbp"]]]
    )
    return both.groupby(["group", "funding_source"])["cost_gbp"].sum()


# a plan with its costs.csv rows, or its ``cause_pieces`` already computed (the engine computes
# the unmitigated and no-build plans' pieces on its second thread)
Costed = tuple[PlacementPlan, pd.DataFrame] | pd.Series


def saving_by_cause(
    scn: Scenario, unmitigated: Costed, no_builds: Costed, optimised: Costed
) -> pd.DataFrame:
    """Saving (GBP over the reported financial years) by cause and funding source.

    Each argument is a plan with its costs.csv rows (or its pieces). Returns columns cause,
    funding_source, saving_gbp (positive = the optimised plan costs less).
    """
    u, z, o = (
        c if isinstance(c, pd.Series) else cause_pieces(scn, *c)
        for c in (unmitigated, no_builds, optimised)
    )
    idx = u.index.union(z.index).union(o.index)
    u, z, o = (x.reindex(idx, fill_value=0.0) for x in (u, z, o))
    group = idx.get_level_values("group")
    parts = {
        "routing": (u - z)[group.isin(["pre16", "vacant"])],
        "builds": z - o,
        "post16": (u - z)[group.isin(["post16", "vacant_post16"])],
    }
    rows = [
        (cause, src, float(v))
        for cause, s in parts.items()
        for src, v in s.groupby(level="funding_source").sum().items()
    ]
    return pd.DataFrame(rows, columns=["cause", "funding_source", "saving_gbp"])
