"""The README's "What a run writes" against a real run: column lists, sums and slugs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from model.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
EXACT = ("demand", "demand_flows", "placements", "sufficiency", "builds", "costs")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scenarios/high_growth.yaml on a three-year horizon with 20 paths (bands differ from P50)."""
    out = tmp_path_factory.mktemp("readme")
    code = main(
        [
            "run",
            str(ROOT / "scenarios" / "high_growth.yaml"),
            "--out",
            str(out),
            "--paths",
            "20",
            "--no-reports",
            "--set",
            "meta.horizon_years=3",
        ]  # fmt: skip
    )
    assert code == 0
    return out


def documented_columns(table: str) -> list[str]:
    """The column names the README's table gives for ``table.csv`` (explanations dropped)."""
    row = re.search(rf"^\| `{table}\.csv` \| (.*) \|$", README, re.M)
    assert row, f"README does not describe {table}.csv"
    text = row.group(1)
    while re.search(r"\([^()]*\)", text):
        text = re.sub(r"\([^()]*\)", "", text)
    return [c.strip().strip("`") for c in text.split(",") if c.strip()]


def test_the_slug_the_readme_gives_is_the_folder_written(run: Path) -> None:
    assert "`scenarios/high_growth.yaml` writes `OUT/high-growth/`" in README
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == ["high-growth"]


@pytest.mark.parametrize("table", EXACT)
def test_documented_columns_are_the_headers(run: Path, table: str) -> None:
    header = list(pd.read_csv(run / "high-growth" / f"{table}.csv", nrows=0).columns)
    assert documented_columns(table) == header


def test_documented_finance_columns_exist(run: Path) -> None:
    header = set(pd.read_csv(run / "high-growth" / "finance.csv", nrows=0).columns)
    named = [c for c in documented_columns("finance") if re.fullmatch(r"[a-z0-9_]+", c)]
    assert len(named) > 15 and set(named) <= header


def identities() -> list[tuple[str, str, str]]:
    """``(table, left, right)`` for each `a = b + c - d` the README states for a table."""
    out = []
    for block in re.findall(r"^- `(\w+)\.csv`: (.*?)(?=^\S|^- )", README, re.M | re.S):
        table, text = block
        for left, right in re.findall(r"`(\w+) = ([\w +-]+)`", text.replace("\n", " ")):
            out.append((table, left, right))
    return out


def test_the_readme_states_the_sums() -> None:
    found = {(t, left) for t, left, _ in identities()}
    assert ("demand_flows", "plans_end") in found
    assert {("finance", "hnb_income_gbp"), ("finance", "in_year_balance_gbp")} <= found


@pytest.mark.parametrize(("table", "left", "right"), identities())
def test_documented_sums_hold(run: Path, table: str, left: str, right: str) -> None:
    df = pd.read_csv(run / "high-growth" / f"{table}.csv")
    total = pd.Series(0.0, index=df.index)
    for sign, col in re.findall(r"([+-]?)\s*(\w+)", right):
        total += -df[col] if sign == "-" else df[col]
    scale = max(1.0, float(df[left].abs().max()))
    assert (df[left] - total).abs().max() <= 1e-9 * scale


def test_backlog_is_inside_new_plans_and_spend_matches_costs(run: Path) -> None:
    flows = pd.read_csv(run / "high-growth" / "demand_flows.csv")
    assert (flows["new_plans"] >= flows["backlog_plans"] - 1e-9).all()
    fin = pd.read_csv(run / "high-growth" / "finance.csv")
    costs = pd.read_csv(run / "high-growth" / "costs.csv")
    hnb = costs[costs["funding_source"] == "hnb"].groupby(["year", "variant"])["cost_gbp"].sum()
    spend = fin.set_index(["financial_year", "variant"])["hnb_spend_gbp"]
    pd.testing.assert_series_equal(
        hnb.sort_index(), spend.sort_index(), check_names=False, check_index_type=False, rtol=1e-9
    )


def test_row_percentiles_do_not_add_to_county_bands(run: Path) -> None:
    demand = pd.read_csv(run / "high-growth" / "demand.csv")
    summary = json.loads((run / "high-growth" / "summary.json").read_text())["demand"]
    horizon = str(demand["year"].max())
    rows = demand[demand["year"] == int(horizon)]
    assert rows["plans_p10"].sum() < summary["plans_p10"][horizon]  # as the README warns
    assert rows["plans_p90"].sum() > summary["plans_p90"][horizon]


def test_finance_plans_are_the_deterministic_forecast(run: Path) -> None:
    """The README: plans_deterministic drives costs; finance plans are 5/12 and 7/12 of it."""
    summary = json.loads((run / "high-growth" / "summary.json").read_text())["demand"]
    det = {int(y): v for y, v in summary["plans_deterministic"].items()}
    fin = pd.read_csv(run / "high-growth" / "finance.csv")
    row = fin[fin["variant"] == "unmitigated"].iloc[0]
    fy = int(row["financial_year"])
    assert row["plans"] == pytest.approx(5 / 12 * det[fy] + 7 / 12 * det[fy + 1], abs=0.1)


def test_costs_sheet_header_says_financial_year() -> None:
    from model.reports import header_of

    assert header_of("year", "costs") == "year [financial year from April]"
    assert header_of("year", "demand") == "year [January census year]"
