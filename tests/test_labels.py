"""Labels for people: the scenario's own names, readable column labels, £ and separators."""

from __future__ import annotations

import math

import pandas as pd

from model.io import load_scenario
from model.labels import Labels, column_label, format_gbp, humanise, pounds


def test_column_labels_name_the_quantity_and_its_unit() -> None:
    assert column_label("gap_places") == "Gap: demand minus committed capacity (places)"
    assert column_label("shadow_price_gbp") == "What one more place saves that year (£)"
    assert (
        column_label("cumulative_deficit_gbp_p90") == "Cumulative DSG deficit at 31 March, P90 (£)"
    )
    assert column_label("plans_p10") == "Plans, P10"
    # Columns nobody listed still read as words with their unit.
    assert humanise("cumulative_deficit_horizon_unmitigated_gbp") == (
        "Cumulative deficit horizon unmitigated (£)"
    )


def test_money_has_a_pound_sign_separators_and_the_sign_first() -> None:
    assert pounds(162620572.5567) == "£162,620,573"
    assert pounds(-51611002.66) == "-£51,611,003"
    assert pounds(math.nan) == "–" and pounds(math.inf) == "unlimited"
    assert format_gbp(162620572.5567) == "£162.6m" and format_gbp(-12345.4) == "-£12,345"


def test_the_scenario_names_its_own_localities_and_settings() -> None:
    names = Labels.from_scenario(load_scenario(None).scenario)
    assert names.locality("east_devon") == "East Devon"
    assert names.setting("resource_base") == "Resource base (ARB) in a mainstream school"
    assert names.of("variant", "unmitigated") == "Unmitigated (today's mix)"
    assert names.of("funding_source", "general_fund") == "General fund"
    assert names.locality("nowhere_else") == "Nowhere else"  # unknown: still words


def test_a_table_for_people_relabels_and_formats() -> None:
    names = Labels(localities={"east_devon": "East Devon"}, settings={"special": "Special school"})
    df = pd.DataFrame(
        {
            "year": [2030],
            "provider_locality": ["east_devon"],
            "setting": ["special"],
            "gap_places": [1234.4],
            "shadow_price_gbp": [-2500.2],
            "prob_meet_plan": [0.25],
        }
    )
    shown = names.table(df)
    assert list(shown.columns) == [
        "Year (January census)",
        "Provider locality",
        "Setting",
        "Gap: demand minus committed capacity (places)",
        "What one more place saves that year (£)",
        "Chance of meeting the Safety Valve plan",
    ]
    assert shown.iloc[0, 1:3].tolist() == ["East Devon", "Special school"]
    html = names.styled(df).to_html()
    for text in ("2030", "1,234", "-£2,500", "25.0%"):
        assert text in html, text
    assert "2,030" not in html  # years are not thousands
