"""Reports: headline figures, report.xlsx (openpyxl), report.html (offline), comparison files."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import pytest
from test_charts import (
    demand_table,
    finance_table,
    placements_table,
    sufficiency_table,
)

from model import charts, labels, reports
from model.engine import Results
from model.io import load_scenario


def builds_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "year_decided": [2025, 2026],
            "year_open": [2027, 2028],
            "provider_locality": ["exeter", "torridge"],
            "setting": ["resource_base", "special"],
            "places": [12.0, 150.0],
            "capital_cost_gbp": [1.2e6, 21e6],
        }
    )


def costs_table() -> pd.DataFrame:
    rows = []
    for variant, special in (("unmitigated", 10e6), ("optimised", 7e6)):
        for year in (2025, 2026):
            rows += [
                {
                    "year": year,
                    "setting": "special",
                    "funding_source": "hnb",
                    "variant": variant,
                    "cost_gbp": special,
                },
                {
                    "year": year,
                    "setting": "mainstream",
                    "funding_source": "hnb",
                    "variant": variant,
                    "cost_gbp": 5e6,
                },
                {
                    "year": year,
                    "setting": "special",
                    "funding_source": "general_fund",
                    "variant": variant,
                    "cost_gbp": 1e6,
                },
            ]
    rows.append(
        {
            "year": 2026,
            "setting": "special",
            "funding_source": "capital",
            "variant": "optimised",
            "cost_gbp": 2e6,
        }
    )
    return pd.DataFrame(rows)


def all_tables() -> dict[str, pd.DataFrame]:
    fin = finance_table(bands=True)
    # Optimised reaches in-year balance in 2026.
    fin.loc[
        (fin["variant"] == "optimised") & (fin["financial_year"] == 2026), "in_year_balance_gbp"
    ] = 1e6
    # Share of paths at or below the plan; no plan (NaN) in 2026.
    fin["prob_meet_plan"] = [0.4, 0.2, np.nan, 0.5, 0.7, np.nan]
    return {
        "demand": demand_table(),
        "placements": placements_table(),
        "sufficiency": sufficiency_table(),
        "builds": builds_table(),
        "costs": costs_table(),
        "finance": fin,
    }


def summary(**extra: Any) -> dict[str, Any]:
    return {
        "scenario": "Devon (illustrative default)",
        "slug": "devon",
        "source": "embedded:devon",
        "scenario_sha256": "ab" * 32,
        "overrides": ["demand.growth=0.12"],
        "package_version": "0.1.0",
        "seed": 7,
        "paths": 20,
        "base_year": 2024,
        "horizon_years": 2,
        **extra,
    }


def results(tables: dict[str, pd.DataFrame] | None = None, **extra: Any) -> Results:
    return Results(
        resolved=load_scenario(None),
        tables=all_tables() if tables is None else tables,
        summary=summary(**extra),
    )


# --------------------------------------------------------------------------- headline figures


def test_headline_figures_from_contract_tables() -> None:
    h = reports.headline_figures(summary(), all_tables())
    assert h["horizon_year"] == 2026 and h["horizon_financial_year"] == 2026
    assert h["plans_base"] == pytest.approx(100.0)
    assert h["plans_horizon"] == pytest.approx(121.0)
    assert h["plans_horizon_p10"] == pytest.approx(108.9) and h[
        "plans_horizon_p90"
    ] == pytest.approx(133.1)
    # Every cost line, all funding sources: 2 years x (10 + 5 + 1) = 32m; optimised 2 x 13 + 2 capital.
    assert h["total_cost_unmitigated_gbp"] == pytest.approx(32e6)
    assert h["total_cost_optimised_gbp"] == pytest.approx(28e6)
    assert h["saving_gbp"] == pytest.approx(4e6)
    assert h["cumulative_deficit_horizon_unmitigated_gbp"] == pytest.approx(220e6)
    assert h["cumulative_deficit_horizon_optimised_gbp"] == pytest.approx(160e6)
    assert h["plan_cumulative_deficit_horizon_gbp"] is None  # the plan stops at 2025
    assert h["first_balanced_fy_unmitigated"] is None
    assert h["first_balanced_fy_optimised"] == 2026
    assert h["places_built"] == pytest.approx(162.0) and h["capital_cost_gbp"] == pytest.approx(
        22.2e6
    )
    # Judged at the plan's last year (2025), not at the horizon where there is no plan.
    assert h["safety_valve_final_fy"] == 2025
    assert h["plan_cumulative_deficit_final_gbp"] == pytest.approx(120e6)
    assert h["gap_to_plan_final_unmitigated_gbp"] == pytest.approx(60e6)  # 180m against 120m
    assert h["gap_to_plan_final_optimised_gbp"] == pytest.approx(30e6)
    assert h["p_meet_safety_valve_unmitigated"] == 0.2 and h["p_meet_safety_valve_optimised"] == 0.7
    assert h["cumulative_deficit_horizon_optimised_gbp_p10"] == pytest.approx(155e6)
    assert h["cumulative_deficit_horizon_optimised_gbp_p90"] == pytest.approx(165e6)
    assert h["solver_status"] is None and h["unmet_places"] is None


def test_headline_figures_prefer_stage_summaries() -> None:
    s = summary(
        # The demand stage's county totals, keyed by year (strings once read back from JSON).
        demand={
            "plans": {"2024": 100.0, "2025": 111.0, "2026": 125.0},
            "plans_p10": {"2024": 100.0, "2025": 105.0, "2026": 118.0},
            "plans_p90": {"2024": 100.0, "2025": 117.0, "2026": 131.0},
        },
        finance={"p_meet_safety_valve": {"unmitigated": 0.1, "optimised": 0.65}},
        optimisation={
            "solver": "highs",
            "status": "Optimal",
            "objective_gbp": 1.5e9,
            "unmet_places_by_year": {2025: 1.0, 2026: 3.0, 2027: 0.0},
            "total_cost_gbp": {"optimised": 27_999_999, "unmitigated": 32_000_001},
            "saving_gbp": 4_000_002,
        },
    )
    h = reports.headline_figures(s, all_tables())
    assert h["total_cost_optimised_gbp"] == 27_999_999 and h["saving_gbp"] == 4_000_002
    assert (h["plans_horizon"], h["plans_horizon_p10"], h["plans_horizon_p90"]) == (
        125.0,
        118.0,
        131.0,
    )
    assert (
        h["p_meet_safety_valve_unmitigated"] == 0.1 and h["p_meet_safety_valve_optimised"] == 0.65
    )
    assert (h["solver"], h["solver_status"], h["objective_gbp"], h["unmet_places"]) == (
        "highs",
        "Optimal",
        1.5e9,
        3.0,
    )


def test_headline_figures_tolerate_a_run_without_stages() -> None:
    h = reports.headline_figures({"base_year": 2024, "horizon_years": 10}, {})
    assert h["horizon_year"] == 2034 and h["horizon_financial_year"] == 2033
    assert all(
        v is None
        for k, v in h.items()
        if k not in ("base_year", "horizon_year", "horizon_financial_year")
    )
    assert set(h) == set(reports.HEADLINE)


def test_units_are_read_from_column_names() -> None:
    assert reports.header_of("cost_gbp") == "cost_gbp [GBP]"
    assert reports.header_of("financial_year") == "financial_year [financial year from April]"
    assert reports.header_of("year_open") == "year_open [January census year]"
    assert reports.header_of("gap_places") == "gap_places [places]"
    assert reports.header_of("plans_p10") == "plans_p10 [plans]"
    assert reports.header_of("locality") == "locality"


# --------------------------------------------------------------------------- report.xlsx


def _sheet_rows(ws: Any) -> list[dict[str, Any]]:
    """A summary sheet's table (headers on row 4) as records."""
    rows = list(ws.iter_rows(min_row=4, values_only=True))
    head = rows[0]
    return [dict(zip(head, r, strict=True)) for r in rows[1:] if any(v is not None for v in r)]


def test_report_xlsx_sheets_formats_and_native_charts(tmp_path: Path) -> None:
    assert reports.write_reports(results(), tmp_path) == []
    path = tmp_path / "report.xlsx"
    wb = openpyxl.load_workbook(path)
    # Summaries for people; the full tidy tables stay in the CSV files the front sheet names.
    assert wb.sheetnames == [
        "Summary",
        "Charts",
        "Finance",
        "Plans",
        "Placements",
        "Sufficiency gap",
        "Value of a place",
        "Build plan",
        "Costs",
        "chart_data",
    ]
    fin = wb["Finance"]
    headers = [c.value for c in fin[4]]
    assert headers[:2] == ["Financial year (from April)", "Plan"]
    col = headers.index("Cumulative DSG deficit at 31 March (£)") + 1
    cell = fin.cell(row=5, column=col)
    assert cell.value == pytest.approx(150e6) and "£" in cell.number_format
    assert fin.cell(row=5, column=2).value == "Unmitigated (today's mix)"
    assert len(_sheet_rows(fin)) == len(all_tables()["finance"])
    # The gap by provider locality: Devon's display names, mainstream (no limit) left out.
    gap = _sheet_rows(wb["Sufficiency gap"])
    assert [(r["Year (January census)"], r["Setting"]) for r in gap] == [
        (2025, "State-funded special school"),
        (2026, "State-funded special school"),
    ]
    assert (gap[0]["Exeter"], gap[0]["Torridge"], gap[0]["Total"]) == (20.0, -20.0, 0.0)
    price = _sheet_rows(wb["Value of a place"])
    assert price[0]["Exeter"] == 30000.0 and "Total" not in price[0]
    # Costs add up: each plan's total over years and funding sources is the costs table's.
    costs = _sheet_rows(wb["Costs"])
    by_plan: dict[str, float] = {}
    for r in costs:
        by_plan[r["Plan"]] = by_plan.get(r["Plan"], 0.0) + r["Total"]
        assert r["Total"] == pytest.approx((r["2025"] or 0.0) + (r["2026"] or 0.0))
    assert by_plan == {"Unmitigated (today's mix)": 32e6, "Optimised plan": 28e6}
    plans = _sheet_rows(wb["Placements"])
    assert {r["Setting"] for r in plans} == {
        "Mainstream school",
        "State-funded special school",
        "Independent or non-maintained special school",
    }
    special = [
        r for r in plans if r["Plan"] == "Optimised plan" and r["Year (January census)"] == 2026
    ]
    assert [r["Exeter"] for r in special if r["Setting"] == "State-funded special school"] == [45.0]

    files = [
        r[1].value
        for r in wb["Summary"].iter_rows()
        if r[1].value and str(r[1].value).endswith(".csv")
    ]
    assert files == [
        f"{t}.csv" for t in ("demand", "placements", "sufficiency", "builds", "costs", "finance")
    ]

    front = {r[0].value: r[1].value for r in wb["Summary"].iter_rows(min_row=4) if r[0].value}
    assert front[
        "Cumulative DSG deficit at the horizon, optimised plan (central forecast)"
    ] == pytest.approx(160e6)
    assert front["Seed"] == 7 and front["Monte Carlo paths"] == 20
    assert front["Scenario sha256 (resolved YAML)"] == "ab" * 32
    assert front["Overrides (--set)"] == "demand.growth=0.12"

    # openpyxl drops charts when reading, so look inside the package: 3 native charts on "Charts".
    with zipfile.ZipFile(path) as z:
        chart_xml = sorted(n for n in z.namelist() if n.startswith("xl/charts/chart"))
        assert len(chart_xml) == 3
        texts = [z.read(n).decode() for n in chart_xml]
    assert "<c:lineChart>" in texts[0] and "Safety Valve plan" in texts[0]
    assert all("<c:barChart>" in t and '<c:grouping val="stacked"/>' in t for t in texts[1:])
    assert "Placement mix, unmitigated" in texts[1] and "Placement mix, optimised" in texts[2]
    data = wb["chart_data"]
    assert [c.value for c in data[1]] == [
        "financial_year",
        "unmitigated cumulative deficit (P50)",
        "optimised cumulative deficit (P50)",
        "Safety Valve plan",
        "optimised P10",
        "optimised P90",
    ]
    # £m: the paths' P50 (the fixture's is the central run + £1m), the basis of the HTML chart
    assert data.cell(row=2, column=3).value == pytest.approx(141.0)
    assert data.cell(row=4, column=6).value == pytest.approx(165.0)  # optimised P90 in 2026


def test_full_workbook_holds_every_row_of_every_table(tmp_path: Path) -> None:
    tables = all_tables()
    assert reports.write_reports(results(tables), tmp_path, full_workbook=True) == []
    wb = openpyxl.load_workbook(tmp_path / "tables.xlsx", read_only=True)
    assert wb.sheetnames == ["demand", "placements", "sufficiency", "builds", "costs", "finance"]
    for name, df in tables.items():
        rows = list(wb[name].iter_rows(values_only=True))
        assert len(rows) == len(df) + 1, name  # header + every row
        assert rows[0][0] == reports.header_of(str(df.columns[0]), name)
    # the costs table counts money by financial year: its header says so
    costs_head = next(wb["costs"].iter_rows(values_only=True))
    assert "year [financial year from April]" in costs_head
    fin = list(wb["finance"].iter_rows(values_only=True))
    col = fin[0].index("cumulative_deficit_gbp [GBP]")
    assert [r[col] for r in fin[1:]] == pytest.approx(
        tables["finance"]["cumulative_deficit_gbp"].tolist()
    )
    front = openpyxl.load_workbook(tmp_path / "report.xlsx")["Summary"]
    assert "tables.xlsx" in [r[1].value for r in front.iter_rows()]


def test_reports_degrade_to_notes_without_tables(tmp_path: Path) -> None:
    assert reports.write_reports(results(tables={}), tmp_path) == []
    wb = openpyxl.load_workbook(tmp_path / "report.xlsx")
    assert wb.sheetnames == ["Summary", "Charts", "chart_data"]
    charts_text = [c.value for row in wb["Charts"].iter_rows() for c in row if c.value]
    assert "No finance table: no deficit chart." in charts_text
    text = (tmp_path / "report.html").read_text()
    assert "The demand table is not part of this run." in text
    assert "The builds table is not part of this run." in text
    assert "Tables not produced by this run: demand, demand_flows" in text


# --------------------------------------------------------------------------- report.html


def test_report_html_is_self_contained_with_every_chart(tmp_path: Path) -> None:
    reports.write_reports(results(), tmp_path)
    text = (tmp_path / "report.html").read_text()
    assert '<script src="http' not in text and "<script src='http" not in text
    assert "<link" not in text  # no external stylesheet either
    assert text.count("Plotly.newPlot") == 5
    for div in ("ehcp_fan", "placement_mix", "deficit", "sufficiency", "builds"):
        assert f'id="{div}"' in text
    assert "class='note'" not in text
    assert "£160.0m" in text  # optimised deficit at the horizon, as a headline card


def test_a_failing_chart_is_a_note_and_a_warning_not_a_crash(tmp_path: Path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("bad axis")

    monkeypatch.setattr(charts, "deficit_chart", broken)
    warnings = reports.write_reports(results(), tmp_path)
    assert warnings == [
        "report.html: Deficit against the Safety Valve plan: chart failed (RuntimeError: bad axis)"
    ]
    text = (tmp_path / "report.html").read_text()
    assert "This chart could not be drawn (RuntimeError: bad axis)" in text
    assert text.count("Plotly.newPlot") == 4


def test_a_failing_workbook_is_skipped_with_a_warning(tmp_path: Path, monkeypatch) -> None:
    def broken(results, path, *args):
        path.write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(reports, "write_xlsx", broken)
    warnings = reports.write_reports(results(), tmp_path)
    assert warnings == ["report.xlsx not written: OSError: disk full"]
    assert not (tmp_path / "report.xlsx").exists()
    assert (tmp_path / "report.html").exists()


# --------------------------------------------------------------------------- comparison


def comparison_frame() -> pd.DataFrame:
    rows = []
    for slug, growth, deficit in (("a", 0.08, 150e6), ("b", 0.12, 250e6)):
        row = dict.fromkeys(
            [*reports.ID_COLUMNS, "demand.growth", *reports.HEADLINE, *reports.TRAILING_COLUMNS]
        )
        row |= {
            "scenario": slug.upper(),
            "slug": slug,
            "status": "ok",
            "demand.growth": growth,
            "cumulative_deficit_horizon_optimised_gbp": deficit,
            "cumulative_deficit_horizon_unmitigated_gbp": deficit + 50e6,
            "saving_gbp": 10e6,
        }
        rows.append(row)
    return pd.DataFrame(rows)


def test_comparison_files(tmp_path: Path) -> None:
    cmp = comparison_frame()
    problems = [("bad.yaml", "bad_input", "bad.yaml: demand.growht: unknown key")]
    assert reports.write_comparison(cmp, problems, tmp_path, swept=["demand.growth"]) == []
    back = pd.read_csv(tmp_path / "comparison.csv")
    assert list(back.columns) == list(cmp.columns)
    assert back["cumulative_deficit_horizon_optimised_gbp"].tolist() == [150e6, 250e6]
    wb = openpyxl.load_workbook(tmp_path / "comparison.xlsx")
    assert wb.sheetnames == ["comparison", "chart", "problems"]
    assert [c.value for c in wb["problems"][2]] == list(problems[0])
    with zipfile.ZipFile(tmp_path / "comparison.xlsx") as z:
        assert [n for n in z.namelist() if n.startswith("xl/charts/chart")] == [
            "xl/charts/chart1.xml"
        ]
    text = (tmp_path / "comparison.html").read_text()
    assert '<script src="http' not in text
    assert "cumulative_deficit_horizon_optimised_gbp by demand.growth" in text
    assert reports._short_labels(cmp, ["demand.growth"]).tolist() == ["growth=0.08", "growth=0.12"]
    assert '"growth=0.08"' in text  # bars labelled by the swept value, not the long folder name
    assert "demand.growht: unknown key" in text
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_comparison_csv_is_byte_stable(tmp_path: Path) -> None:
    cmp = comparison_frame()
    cmp.loc[0, "saving_gbp"] = 0.1 + 0.2  # a float whose shortest repr is long
    reports.write_comparison_csv(cmp, tmp_path / "one.csv")
    reports.write_comparison_csv(cmp.copy(), tmp_path / "two.csv")
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "two.csv").read_bytes()
    assert float(pd.read_csv(tmp_path / "one.csv")["saving_gbp"][0]) == 0.1 + 0.2
    assert b"\r\n" not in (tmp_path / "one.csv").read_bytes()


def test_html_table_escapes_scenario_text() -> None:
    out = reports._html_table([("<script>alert(1)</script>", np.float64(1.5))], ["name", "value"])
    assert "<script>alert" not in out and "&lt;script&gt;" in out


def test_fan_chart_in_the_report_uses_the_county_band(tmp_path: Path) -> None:
    res = results(
        demand={
            "plans": {2024: 100.0, 2025: 111.0, 2026: 125.0},
            "plans_p10": {2024: 100.0, 2025: 105.0, 2026: 118.0},
            "plans_p90": {2024: 100.0, 2025: 117.0, 2026: 131.0},
        }
    )
    totals = reports._demand_totals(res.summary)
    assert totals.to_dict("list") == {
        "year": [2024, 2025, 2026],
        "plans": [100.0, 111.0, 125.0],
        "plans_p10": [100.0, 105.0, 118.0],
        "plans_p90": [100.0, 117.0, 131.0],
    }
    text, errors = reports.render_html(res)
    assert errors == [] and "P10-P90 (sum of cells)" not in text and "P10-P90" in text


def test_saving_by_cause_and_funding_source_in_both_reports(tmp_path: Path) -> None:
    by = {
        "routing": {"hnb": 60_000_000, "general_fund": 6_000_000},
        "post16": {"hnb": 70_000_000, "general_fund": 8_000_000},
        "builds": {"hnb": 259_000_000, "general_fund": 36_000_000, "capital": -60_000_000},
    }
    res = results(optimisation={"saving_by_cause_and_source_gbp": by})
    table = reports.saving_by_cause_table(res.summary)
    assert table is not None
    total = table.set_index("cause").loc["Total saving"]
    assert total["total_gbp"] == 379_000_000
    assert total["capital_gbp"] == -60_000_000
    assert table["total_gbp"].iloc[:-1].tolist() == [66_000_000, 78_000_000, 235_000_000]
    assert reports.write_reports(res, tmp_path) == []
    ws = openpyxl.load_workbook(tmp_path / "report.xlsx")["Saving by cause"]
    rows = [r for r in ws.iter_rows(values_only=True) if any(v is not None for v in r)]
    assert rows[-1][0] == "Total saving" and rows[-1][-1] == 379_000_000
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Saving of the optimised plan by cause and funding source" in html
    assert "£379,000,000" in html and "-£60,000,000" in html  # a negative sum reads -£


def test_headline_display_keeps_a_small_gap_and_rounds_people_and_cases() -> None:
    # a plan proven within 0.38% of the cheapest is not "0%"; shares of a few per cent keep one
    # decimal; counts of people and cases are whole (the process tab shows 42, not 41.7)
    assert reports._display(0.0038, "share") == "0.38%"
    assert reports._display(0.05, "share") == "5.0%"
    assert reports._display(0.5, "share") == "50%"
    assert reports._display(0.0, "share") == "0%"
    assert reports._display(41.7, "cases") == "42"
    assert reports._display(434.6, "reviews") == "435"
    assert reports._display(1234.4, "plans") == "1,234"
    # a financial year is written as one (2033 would read as the year ending March 2033)
    assert reports._display(2033, "financial year") == "2033-34"
    assert reports._display(2099, "financial year") == "2099-00"
    assert reports._display(2034, "year") == "2034"
    # the chance of meeting the plan is a share; a P90 column of a contract column is labelled
    assert reports.unit_of("prob_meet_plan") == "share"
    assert labels.is_contract_column("cumulative_deficit_gbp_p90")
    assert not labels.is_contract_column("Exeter")
    # the deficit figures say their basis: the central forecast, not the paths' P50
    assert reports.HEADLINE["cumulative_deficit_horizon_optimised_gbp"][0].endswith(
        "(central forecast)"
    )


def test_html_tables_read_in_words() -> None:
    """report.html's and comparison.html's tables: headers in words with their unit, a headline
    figure formatted as the headlines are (a plan gap of 0.38% is not "0")."""
    assert reports._html_header("capital_cost_gbp") == "Capital cost (£)"
    assert reports._html_header("capital_gbp") == "Capital (£)"
    assert reports._html_header("year_decided") == "Year decided (January census)"
    assert reports._html_header("plans_horizon") == "EHCPs at the horizon (P50)"
    html = reports._df_html(
        pd.DataFrame({"mip_gap": [0.0038], "saving_gbp": [-5e6], "horizon_financial_year": [2033]})
    )
    assert "0.38%" in html and "-£5.0m" in html and "2033-34" in html
    assert "mip_gap" not in html


def test_assumptions_read_as_rates_and_say_the_price_basis() -> None:
    got = dict(reports._assumptions(results(all_tables())))
    scn = results(all_tables()).resolved.scenario
    assert got["Cost inflation per year"] == f"{scn.costs.inflation:.1%}"
    assert got["Discount rate (a year)"] == f"{scn.policy.discount_rate:.1%}"
    assert got["Money"].startswith("outturn prices")
