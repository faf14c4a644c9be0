"""Charts: pure DataFrame -> Figure functions over the contract tables (small hand-made frames)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from model import charts
from model.labels import Labels

NAMES = Labels(
    localities={"exeter": "Exeter", "torridge": "Torridge"},
    settings={
        "mainstream": "Mainstream",
        "resource_base": "Resource base",
        "special": "Special school",
        "independent": "Independent",
    },
)


def demand_table(bands: bool = True) -> pd.DataFrame:
    rows = []
    for year, base in ((2024, 100.0), (2025, 110.0), (2026, 121.0)):
        for loc, k in (("exeter", 0.6), ("torridge", 0.4)):
            for need in ("ASD", "SEMH"):
                plans = base * k / 2
                row = {
                    "year": year,
                    "locality": loc,
                    "need": need,
                    "phase": "primary",
                    "plans": plans,
                }
                if bands:
                    row |= {"plans_p10": plans * 0.9, "plans_p90": plans * 1.1}
                rows.append(row)
    return pd.DataFrame(rows)


def placements_table() -> pd.DataFrame:
    rows = []
    for variant, special, indep in (("unmitigated", 30.0, 20.0), ("optimised", 45.0, 5.0)):
        for year in (2025, 2026):
            for setting, places in (
                ("mainstream", 50.0),
                ("special", special),
                ("independent", indep),
            ):
                for home in ("exeter", "torridge"):  # split in two rows to check the summing
                    rows.append(
                        {
                            "year": year,
                            "locality": home,
                            "provider_locality": "exeter",
                            "need": "ASD",
                            "phase": "primary",
                            "setting": setting,
                            "places": places / 2,
                            "variant": variant,
                        }
                    )
    return pd.DataFrame(rows)


def finance_table(bands: bool = False) -> pd.DataFrame:
    rows = []
    for variant, deficit in (
        ("unmitigated", (150e6, 180e6, 220e6)),
        ("optimised", (140e6, 150e6, 160e6)),
    ):
        for fy, d, plan in zip((2024, 2025, 2026), deficit, (130e6, 120e6, np.nan), strict=True):
            row = {
                "financial_year": fy,
                "variant": variant,
                "hnb_income_gbp": 100e6,
                "hnb_spend_gbp": 110e6,
                "in_year_balance_gbp": -10e6,
                "cumulative_deficit_gbp": d,
                "plan_cumulative_deficit_gbp": plan,
            }
            if bands:
                row |= {
                    "cumulative_deficit_gbp_p10": d - 5e6,
                    "cumulative_deficit_gbp_p50": d + 1e6,  # paths' median, not the central run
                    "cumulative_deficit_gbp_p90": d + 5e6,
                }
            rows.append(row)
    return pd.DataFrame(rows)


def test_require_names_what_is_missing() -> None:
    with pytest.raises(charts.ChartDataError, match="not part of this run"):
        charts.require(None, ["year"], "demand")
    with pytest.raises(charts.ChartDataError, match="lacks column.*plans"):
        charts.require(pd.DataFrame({"year": [2024]}), ["year", "plans"], "demand")
    with pytest.raises(charts.ChartDataError, match="no rows"):
        charts.require(pd.DataFrame(columns=["year"]), ["year"], "demand")


def test_fan_chart_sums_cells_and_draws_the_band() -> None:
    fig = charts.ehcp_fan_chart(demand_table())
    band, line = fig.data
    assert band.fill == "toself"
    assert list(line.x) == [2024, 2025, 2026]
    assert np.allclose(line.y, [100.0, 110.0, 121.0])
    # Band polygon: P90 forwards, P10 backwards.
    assert np.allclose(band.y, [110.0, 121.0, 133.1, 108.9, 99.0, 90.0])


def test_fan_chart_without_paths_is_one_line() -> None:
    fig = charts.ehcp_fan_chart(demand_table(bands=False))
    assert len(fig.data) == 1 and fig.data[0].name == "plans"


def test_fan_chart_prefers_totals_with_their_own_band() -> None:
    totals = pd.DataFrame(
        {
            "year": [2024, 2025],
            "plans": [100.0, 112.0],
            "plans_p10": [100.0, 105.0],
            "plans_p90": [100.0, 118.0],
        }
    )
    fig = charts.ehcp_fan_chart(demand_table(), totals=totals)
    assert np.allclose(fig.data[1].y, [100.0, 112.0])
    assert "sum of cells" not in fig.data[0].name


def test_fan_chart_overlays_scenarios() -> None:
    a = demand_table().assign(scenario="A")
    b = demand_table().assign(scenario="B", plans=lambda d: d["plans"] * 2)
    fig = charts.ehcp_fan_chart(pd.concat([a, b]))
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["A (P50)", "B (P50)"]
    assert np.allclose(lines[1].y, [200.0, 220.0, 242.0])


def test_placement_mix_sums_over_localities_with_a_panel_per_variant() -> None:
    mix = charts.placement_mix(placements_table())
    got = mix.set_index(["variant", "year", "setting"])["places"]
    assert got[("optimised", 2026, "special")] == pytest.approx(45.0)
    assert got[("unmitigated", 2025, "independent")] == pytest.approx(20.0)
    fig = charts.placement_mix_chart(placements_table(), labels=NAMES)
    titles = [a.text for a in fig.layout.annotations]
    # The canonical order, whatever the row order, in words a reader knows.
    assert titles == ["Unmitigated (today's mix)", "Optimised plan"]
    special = [t for t in fig.data if t.name == "Special school"]
    assert [list(t.y) for t in special] == [[30.0, 30.0], [45.0, 45.0]]
    assert special[0].marker.color == charts.SETTING_COLOURS["special"]
    assert sum(t.showlegend for t in special) == 1  # one legend entry per setting


def test_placement_mix_share_sums_to_one_each_year() -> None:
    fig = charts.placement_mix_chart(placements_table(), share=True)
    opt = [t for t in fig.data if t.xaxis == "x2"]
    totals = np.sum([t.y for t in opt], axis=0)
    assert np.allclose(totals, 1.0)
    assert [t for t in opt if t.name == "Independent"][0].y[0] == pytest.approx(0.05)


def test_deficit_chart_in_millions_with_plan_and_bands() -> None:
    fig = charts.deficit_chart(finance_table(bands=True))
    names = [t.name for t in fig.data]
    assert names == [
        "Unmitigated (today's mix) P10-P90",
        "Unmitigated (today's mix) (P50)",
        "Optimised plan P10-P90",
        "Optimised plan (P50)",
        "Safety Valve plan",
    ]
    # the line inside the P10-P90 band is the paths' P50 (the cards' basis), not the central run
    assert np.allclose(fig.data[1].y, [151.0, 181.0, 221.0])
    plan = fig.data[-1]
    assert list(plan.x) == [2024, 2025] and np.allclose(plan.y, [130.0, 120.0])  # no plan for 2026
    assert fig.data[1].line.dash == "dot" and fig.data[3].line.dash == "solid"


def test_deficit_chart_bands_only_where_the_table_has_them() -> None:
    fig = charts.deficit_chart(finance_table(bands=False))
    assert not [t for t in fig.data if t.fill == "toself"]
    # one path: the deterministic forecast, and the legend says so
    assert fig.data[0].name.replace("<br>", " ") == "Unmitigated (today's mix) (central forecast)"
    assert np.allclose(fig.data[0].y, [150.0, 180.0, 220.0])


def test_deficit_chart_overlays_scenarios_with_one_line_per_plan() -> None:
    other = finance_table().assign(
        scenario="C", plan_cumulative_deficit_gbp=lambda d: d["plan_cumulative_deficit_gbp"] * 2
    )
    both = pd.concat(
        [finance_table().assign(scenario="A"), finance_table().assign(scenario="B"), other]
    )
    fig = charts.deficit_chart(both)
    # A and B share one Safety Valve plan, drawn once; C's differs, so it gets its own line.
    assert [t.name for t in fig.data if "Safety Valve" in t.name] == [
        "Safety Valve plan",
        "C: Safety Valve plan",
    ]


def test_compare_deficit_chart_is_one_line_per_scenario_without_bands() -> None:
    runs = [finance_table(bands=True).assign(scenario=f"scenario {k}") for k in range(4)]
    fig = charts.deficit_chart(pd.concat(runs), variants=("optimised",), bands=False)
    names = [t.name for t in fig.data]
    # Four pinned scenarios: four optimised lines and the shared plan, not 4 x (2 lines +
    # 2 bands) + plans = 20 legend entries of overlapping bands.
    assert names == [
        "scenario 0 (P50)",
        "Safety Valve plan",
        "scenario 1 (P50)",
        "scenario 2 (P50)",
        "scenario 3 (P50)",
    ]
    assert not [t for t in fig.data if t.fill == "toself"]
    assert np.allclose(fig.data[0].y, [141.0, 151.0, 161.0])  # the optimised rows' P50, in £m
    fan = charts.ehcp_fan_chart(
        pd.concat([demand_table().assign(scenario=s) for s in ("A", "B")]), bands=False
    )
    assert [t.name for t in fan.data] == ["A (P50)", "B (P50)"]


def test_legends_sit_clear_of_axis_titles_and_of_the_titles() -> None:
    figs = [
        charts.ehcp_fan_chart(demand_table()),
        charts.deficit_chart(finance_table(bands=True)),
        charts.balance_chart(finance_table()),
    ]
    for fig in figs:  # a few entries: one row above the plot
        assert fig.layout.legend.yanchor == "bottom" and fig.layout.legend.y >= 1, fig.layout.title
        assert fig.layout.margin.t >= 100
    # panels: many entries (settings, localities) would wrap upwards over the titles, so the
    # legend is one column to the right of the panels
    for fig in (
        charts.placement_mix_chart(placements_table()),
        charts.sufficiency_chart(sufficiency_table()),
    ):
        legend = fig.layout.legend
        assert legend.orientation == "v" and legend.x > 1 and legend.xanchor == "left"


def sufficiency_table() -> pd.DataFrame:
    rows = []
    for year in (2025, 2026):
        for loc, demand, cap, price in (
            ("exeter", 120.0, 100.0, 30000.0),
            ("torridge", 40.0, 60.0, 0.0),
        ):
            rows.append(
                {
                    "year": year,
                    "provider_locality": loc,
                    "setting": "special",
                    "demand_places": demand + (year - 2025) * 10,
                    "capacity_places": cap,
                    "gap_places": demand + (year - 2025) * 10 - cap,
                    "shadow_price_gbp": price,
                }
            )
            rows.append(
                {
                    "year": year,
                    "provider_locality": loc,
                    "setting": "mainstream",
                    "demand_places": 500.0,
                    "capacity_places": math.inf,
                    "gap_places": -math.inf,
                    "shadow_price_gbp": 0.0,
                }
            )
    return pd.DataFrame(rows)


def test_sufficiency_chart_last_year_and_only_limited_settings() -> None:
    fig = charts.sufficiency_chart(sufficiency_table(), labels=NAMES)
    assert [a.text for a in fig.layout.annotations] == ["Special school"]  # mainstream: no limit
    demand = [t for t in fig.data if t.name == "places demanded"][0]
    assert list(demand.x) == ["Exeter", "Torridge"] and list(demand.y) == [130.0, 50.0]
    assert "2026" in fig.layout.title.text
    fig25 = charts.sufficiency_chart(sufficiency_table(), year=2025)
    assert list([t for t in fig25.data if t.name == "places demanded"][0].y) == [120.0, 40.0]
    with pytest.raises(charts.ChartDataError, match="2030"):
        charts.sufficiency_chart(sufficiency_table(), year=2030)
    # with the plan's new places: drawn on top of the committed ones, so a gap they close is
    # seen closed (the gap alone, demand minus committed, read as a shortfall)
    planned = sufficiency_table().assign(new_capacity_places=lambda t: 30.0 * (t["year"] == 2026))
    fig = charts.sufficiency_chart(planned, labels=NAMES)
    (new,) = [t for t in fig.data if t.name == "new places (optimised plan)"]
    committed = [t for t in fig.data if t.name == "committed capacity"][0]
    assert list(new.y) == [30.0, 30.0] and list(new.base) == list(committed.y)
    assert new.offsetgroup == committed.offsetgroup != demand.offsetgroup
    assert "new places on top" in fig.layout.title.text


def test_sufficiency_heatmap_gap_with_shadow_prices() -> None:
    fig = charts.sufficiency_heatmap(sufficiency_table(), year=2025, labels=NAMES)
    hm = fig.data[0]
    assert list(hm.y) == ["Mainstream", "Special school"] and list(hm.x) == ["Exeter", "Torridge"]
    z = np.array(hm.z, dtype=float)
    assert z[1].tolist() == [20.0, -20.0]
    assert np.isnan(z[0]).all()  # unlimited capacity has no finite gap
    assert np.array(hm.customdata, dtype=float)[1].tolist() == [30000.0, 0.0]
    # The gap takes either sign: a diverging scale centred on zero, titled in words.
    assert hm.zmid == 0 and hm.zmin == -hm.zmax
    assert "gap_places" not in fig.layout.title.text and "Gap" in fig.layout.title.text


def test_shadow_price_heatmap_is_sequential_from_zero() -> None:
    fig = charts.sufficiency_heatmap(sufficiency_table(), 2025, "shadow_price_gbp", labels=NAMES)
    hm = fig.data[0]
    # Shadow prices are never negative: a sequential scale from 0, not a red-blue diverging one.
    assert hm.zmin == 0 and hm.zmax == pytest.approx(30000.0) and hm.zmid is None
    assert hm.colorscale[0][1] != hm.colorscale[-1][1]
    assert "RdBu" not in str(hm.colorscale) and hm.colorbar.tickprefix == "£"
    assert "shadow" not in fig.layout.title.text.lower()
    assert fig.layout.title.text.startswith("What one more place saves")


def test_build_plan_chart_stacks_localities_per_setting() -> None:
    builds = pd.DataFrame(
        {
            "year_decided": [2025, 2025, 2026],
            "year_open": [2027, 2027, 2028],
            "provider_locality": ["exeter", "torridge", "exeter"],
            "setting": ["resource_base", "resource_base", "special"],
            "places": [12.0, 24.0, 150.0],
            "capital_cost_gbp": [1e6, 2e6, 20e6],
        }
    )
    fig = charts.build_plan_chart(builds, labels=NAMES)
    assert [a.text for a in fig.layout.annotations] == ["Resource base", "Special school"]
    assert sum(float(np.sum(t.y)) for t in fig.data) == pytest.approx(186.0)
    assert [t.name for t in fig.data if t.showlegend] == ["Exeter", "Torridge"]
    # Without a scenario's names, identifiers still read as words.
    plain = charts.build_plan_chart(builds)
    assert [t.name for t in plain.data if t.showlegend] == ["Exeter", "Torridge"]
    assert [a.text for a in plain.layout.annotations] == ["Resource base", "Special"]
    with pytest.raises(charts.ChartDataError, match="builds no new places"):
        charts.build_plan_chart(builds.assign(places=0.0))


def test_comparison_and_sweep_charts() -> None:
    cmp = pd.DataFrame(
        {
            "slug": ["a", "b", "c", "d"],
            "demand.growth": [0.08, 0.08, 0.12, 0.12],
            "policy.max_independent_share": [0.05, 0.10, 0.05, 0.10],
            "cumulative_deficit_horizon_unmitigated_gbp": [200e6, 200e6, 300e6, 300e6],
            "cumulative_deficit_horizon_optimised_gbp": [150e6, 160e6, 250e6, 260e6],
        }
    )
    fig = charts.comparison_chart(cmp)
    assert np.allclose(fig.data[1].y, [150.0, 160.0, 250.0, 260.0])
    assert [t.name for t in fig.data] == [
        "Cumulative deficit horizon unmitigated (£)",
        "Cumulative deficit horizon optimised (£)",
    ]
    named = charts.comparison_chart(
        cmp.assign(slug=["a very long pinned scenario label that must not be cut", *"bcd"]),
        series_names={"cumulative_deficit_horizon_optimised_gbp": "Deficit, optimised"},
    )
    assert named.data[1].name == "Deficit, optimised"
    # Long labels wrap onto lines instead of being truncated.
    assert named.data[0].x[0].replace("<br>", " ") == (
        "a very long pinned scenario label that must not be cut"
    )
    sw = charts.sweep_chart(cmp, "demand.growth", colour="policy.max_independent_share")
    assert [t.name for t in sw.data] == [
        "policy.max_independent_share=0.05",
        "policy.max_independent_share=0.1",
    ]
    assert np.allclose(sw.data[0].y, [150.0, 250.0])
    empty = cmp.assign(cumulative_deficit_horizon_optimised_gbp=np.nan)
    with pytest.raises(charts.ChartDataError):
        charts.sweep_chart(empty, "demand.growth")


def test_custom_settings_get_distinct_fallback_colours() -> None:
    colours = charts.setting_colours(["special", "hospital_school", "farm_school"])
    assert colours["special"] == charts.SETTING_COLOURS["special"]
    assert colours["hospital_school"] != colours["farm_school"]
