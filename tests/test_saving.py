"""The optimised saving by cause (routing, builds, post16) and funding source adds up."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_sufficiency import mapping

from model.engine import run_scenario
from model.io import load_scenario
from model.sufficiency.saving import CAUSES


@pytest.fixture(scope="module", params=[0, 3000], ids=["no_places", "spare_places"])
def tiny_summary(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The one-locality LP scenario through the whole engine: 50 new plans a year at all ages,
    special (buildable, 8,000 place funding) against independent; today's mix sends half of
    everyone to independent. Special has no places (the saving can only come from building) or
    3,000 (spare places: filling them is enough, nothing is built)."""
    m = mapping()
    m["population"]["base_0_25"] = {"a": 100_000}
    m["costs"]["place_funding_gbp"] = {"special": 8000}
    m["capacity"] = {
        "existing": {"special": {"a": request.param}},
        "market_limits": [
            {
                "name": "independent places",
                "settings": ["independent"],
                "phases": ["post19"],
                "places": 0,
            }
        ],
    }
    path = Path(tmp_path_factory.mktemp("saving")) / "tiny.yaml"
    path.write_text(yaml.safe_dump(m), encoding="utf-8")
    summary = run_scenario(load_scenario(path, []), paths=1).summary
    return {
        "special_places": request.param,
        "warnings": summary["warnings"],
        **summary["optimisation"],
    }


def test_causes_add_up_to_the_total_saving(tiny_summary: dict) -> None:
    by_cause = tiny_summary["saving_by_cause_gbp"]
    assert set(by_cause) == set(CAUSES)
    assert tiny_summary["saving_gbp"] > 0
    assert sum(by_cause.values()) == pytest.approx(tiny_summary["saving_gbp"], abs=3)
    if tiny_summary["special_places"] == 0:
        # nowhere better to route to without new places: the whole saving is the builds'
        assert by_cause["routing"] == pytest.approx(0, abs=1)
        assert by_cause["post16"] == pytest.approx(0, abs=1)
        assert by_cause["builds"] == pytest.approx(tiny_summary["saving_gbp"], abs=3)
    else:
        # spare special places, nothing built: filling them saves at every age
        assert tiny_summary["places_built"] == 0
        assert by_cause["builds"] == pytest.approx(0, abs=1)
        assert by_cause["routing"] > 0 and by_cause["post16"] > 0


def test_each_cause_adds_up_over_funding_sources(tiny_summary: dict) -> None:
    by_src = tiny_summary["saving_by_cause_and_source_gbp"]
    for cause, total in tiny_summary["saving_by_cause_gbp"].items():
        assert sum(by_src[cause].values()) == pytest.approx(total, abs=3)
    # over causes they give the saving by funding source
    for src, total in tiny_summary["saving_by_funding_source_gbp"].items():
        assert sum(by_src[c].get(src, 0) for c in CAUSES) == pytest.approx(total, abs=3)
    if tiny_summary["special_places"] == 0:
        assert by_src["builds"]["capital"] < 0  # the builds' capital is a cost


def test_a_market_limit_breach_is_a_warning_in_the_summary(tiny_summary: dict) -> None:
    """Today's mix sends half of the 19+ to independent, past a limit of 0 places."""
    kinds = {(w["kind"], w["variant"]) for w in tiny_summary["warnings"]}
    assert ("market_limit", "unmitigated") in kinds
    for w in tiny_summary["warnings"]:
        assert set(w) >= {"kind", "message", "size", "years"} and w["size"] > 0


def test_the_no_build_lp_pinned_from_the_optimisers_model_is_the_one_built_afresh() -> None:
    """The engine hands the no-build LP the optimiser's model with its builds pinned at zero
    instead of building it again: the same plan, array for array, and the optimiser's own
    model keeps its build bounds (the pinned copy has its own)."""
    from concurrent.futures import Future

    import numpy as np

    from model import sufficiency as su
    from model.demand import run_demand
    from model.placements import run_placements

    scn = load_scenario(None, ["meta.horizon_years=5"]).scenario
    dem = run_demand(scn, 1, 1)
    placed = run_placements(scn, dem.stock, dem.new)
    afresh = su.no_build_plan(scn, placed.demand, placed.unmitigated)
    model = su.build(scn, placed.demand, before=placed.unmitigated)
    blk = model.lp.variables["build"]
    lower, upper = blk.lower.copy(), blk.upper.copy()
    central: Future = Future()
    central.set_result(model)
    shared = su.no_build_plan(scn, placed.demand, placed.unmitigated, central=central)
    for name in ("places", "entrant_places"):
        assert np.array_equal(getattr(shared, name), getattr(afresh, name)), name
    assert afresh.places.sum() > 0
    np.testing.assert_array_equal(model.lp.variables["build"].lower, lower)
    np.testing.assert_array_equal(model.lp.variables["build"].upper, upper)
    assert (upper > 0).any()  # there were builds to pin (the check above could fail)
