"""Labels and number formats for people: a scenario's own display names for its localities, settings
and needs, and readable names (with units) for the contract's column names.

The tables keep their machine names (``east_devon``, ``gap_places``); what a person sees in the app
and the reports goes through ``Labels``, so no raw identifier reaches a chart, a card or a table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

# Columns whose names are not self-explanatory once the underscores go: column -> label (unit
# added from the name by ``unit_suffix``).
COLUMN_LABELS: dict[str, str] = {
    "year": "Year (January census)",
    "academic_year": "Academic year",
    "financial_year": "Financial year (from April)",
    "financial_year_label": "Financial year",
    "locality": "Home locality",
    "provider_locality": "Provider locality",
    "need": "Primary need",
    "phase": "Phase",
    "setting": "Setting",
    "variant": "Plan",
    "funding_source": "Funding source",
    "cost_line": "Cost line",
    "year_basis": "Year basis",
    "year_decided": "Year decided (January census)",
    "year_open": "Year open (January census)",
    "plans": "Plans (P50)",
    "plans_p10": "Plans, P10",
    "plans_p90": "Plans, P90",
    "plans_start": "Plans at start",
    "new_plans": "New plans (joiners)",
    "backlog_plans": "Backlog plans",
    "ceased_plans": "Ceased plans (leavers)",
    "aged_out_plans": "Aged out of the phase",
    "aged_in_plans": "Aged into the phase",
    "plans_end": "Plans at end",
    "places": "Places",
    "new_places": "New places",
    "units": "Units",
    "demand_places": "Places demanded",
    "capacity_places": "Committed capacity (places)",
    "new_capacity_places": "New capacity from the plan (places)",
    "gap_places": "Gap: demand minus committed capacity (places)",
    "shadow_price_gbp": "What one more place saves that year (£)",
    "shadow_price_pv_gbp": "What one more place saves, present value (£)",
    "capital_cost_gbp": "Capital cost (£)",
    "cost_gbp": "Cost (£)",
    "hnb_allocation_gbp": "High Needs Block allocation (£)",
    "block_transfers_gbp": "Transfers from other blocks (£)",
    "hnb_income_gbp": "High Needs Block income (£)",
    "placement_spend_gbp": "Placement spend (£)",
    "other_hnb_spend_gbp": "Other high-needs spend (£)",
    "hnb_spend_gbp": "High Needs Block spend (£)",
    "in_year_balance_gbp": "In-year balance, before contributions (£)",
    "safety_valve_gbp": "Safety Valve payment (£)",
    "la_contributions_gbp": "Council contributions (£)",
    "cumulative_deficit_gbp": "Cumulative DSG deficit at 31 March (£)",
    "plan_cumulative_deficit_gbp": "Safety Valve plan: cumulative deficit (£)",
    "plan_in_year_balance_gbp": "Safety Valve plan: in-year balance (£)",
    "gap_to_plan_gbp": "Deficit above the Safety Valve plan (£)",
    "avg_cost_per_plan_gbp": "Average placement cost per plan (£)",
    "prob_meet_plan": "Chance of meeting the Safety Valve plan",
    "paths": "Monte Carlo paths",
    "scenario": "Scenario",
}
VARIANT_LABELS = {"unmitigated": "Unmitigated (today's mix)", "optimised": "Optimised plan"}
FUNDING_LABELS = {"hnb": "High Needs Block", "general_fund": "General fund", "capital": "Capital"}
# Columns holding identifiers a scenario names for itself: column -> which name table.
_ID_COLUMNS = {
    "locality": "localities",
    "provider_locality": "localities",
    "setting": "settings",
    "need": "needs",
    "variant": "variants",
    "funding_source": "funding",
    "cost_line": "words",
}


def humanise(name: str) -> str:
    """``cumulative_deficit_p90_gbp`` -> ``Cumulative deficit P90 (£)``: a fallback label."""
    parts = str(name).split("_")
    unit = ""
    if parts and parts[-1] == "gbp":
        unit, parts = " (£)", parts[:-1]
    words = [
        p.upper() if p in ("p10", "p50", "p90", "hnb", "dsg", "lp", "fy") else p for p in parts
    ]
    text = " ".join(w for w in words if w)
    return (text[:1].upper() + text[1:] + unit) if text else str(name)


def is_contract_column(name: str) -> bool:
    """A column ``column_label`` knows: a contract column, or its P10/P50/P90."""
    return name in COLUMN_LABELS or column_label(name) != humanise(name)


def column_label(name: str) -> str:
    """A readable label for a contract column (P10/P90 variants of known columns included)."""
    if name in COLUMN_LABELS:
        return COLUMN_LABELS[name]
    for q in ("p10", "p50", "p90"):
        for suffix in (f"_{q}", f"_gbp_{q}"):
            if name.endswith(suffix):
                stem = name[: -len(suffix)] + ("_gbp" if "gbp" in suffix else "")
                if stem in COLUMN_LABELS:
                    base = COLUMN_LABELS[stem]
                    if base.endswith(" (£)"):
                        return f"{base[:-4]}, {q.upper()} (£)"
                    return f"{base}, {q.upper()}"
    return humanise(name)


def is_money(column: str) -> bool:
    c = column.lower()
    return c.endswith("_gbp") or "_gbp_" in c


def is_share(column: str) -> bool:
    c = column.lower()
    return "share" in c or c.startswith("prob") or c.startswith("p_meet")


def is_year(column: str) -> bool:
    c = column.lower()
    return c in ("year", "financial_year", "year_open", "year_decided", "base_year") or c.endswith(
        "_fy"
    )


def _amount(value: Any) -> float | str:
    """The value as a finite number, or the text shown in its place ("–", "unlimited")."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(v):
        return "–" if math.isnan(v) else ("unlimited" if v > 0 else "-unlimited")
    return v


def format_gbp(value: Any) -> str:
    """£ with thousands separators (whole pounds); £m for millions: ``£162.6m``, ``£12,345``."""
    v = _amount(value)
    if isinstance(v, str):
        return v
    if abs(v) >= 1e6:
        return f"{'-' if v < 0 else ''}£{abs(v) / 1e6:,.1f}m"
    return f"{'-' if v < 0 else ''}£{abs(v):,.0f}"


def pounds(value: Any) -> str:
    """Whole pounds with thousands separators, the sign before the £: ``-£51,611,003``."""
    v = _amount(value)
    if isinstance(v, str):
        return v
    return f"{'-' if round(v) < 0 else ''}£{abs(v):,.0f}"


def number_format(column: str) -> str | Callable[[Any], str]:
    """How a column's values show in a people's table (a format string or a function)."""
    if is_money(column):
        return pounds
    if is_share(column):
        return "{:.1%}"
    if is_year(column):
        return "{:.0f}"
    return "{:,.0f}"


@dataclass(frozen=True)
class Labels:
    """Display names of one scenario's identifiers (localities, settings, needs) and of columns."""

    localities: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, str] = field(default_factory=dict)
    needs: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_scenario(cls, scn: Any) -> Labels:
        """The scenario's own names: ``geography.localities[].name``, ``settings.<id>.name``."""
        return cls(
            localities={loc.id: loc.name for loc in scn.geography.localities},
            settings={k: v.name for k, v in scn.settings.items()},
            needs={n: n.replace("_", " ") for n in getattr(scn.demand, "needs", [])},
        )

    def locality(self, ident: Any) -> str:
        return self.localities.get(ident, humanise(str(ident)))

    def setting(self, ident: Any) -> str:
        return self.settings.get(ident, humanise(str(ident)))

    def of(self, column: str, ident: Any) -> str:
        """The display name of ``ident`` found in ``column`` (a locality, setting, variant...)."""
        kind = _ID_COLUMNS.get(column)
        if kind == "localities":
            return self.locality(ident)
        if kind == "settings":
            return self.setting(ident)
        if kind == "needs":
            return self.needs.get(ident, str(ident))
        if kind == "variants":
            return VARIANT_LABELS.get(ident, str(ident))
        if kind == "funding":
            return FUNDING_LABELS.get(ident, str(ident))
        if kind == "words":
            return humanise(str(ident))
        return str(ident)

    def names(self, column: str) -> dict[Any, str]:
        """Every known identifier of ``column`` mapped to its display name."""
        kind = _ID_COLUMNS.get(column)
        table: Mapping[str, str] = {
            "localities": self.localities,
            "settings": self.settings,
            "needs": self.needs,
            "variants": VARIANT_LABELS,
            "funding": FUNDING_LABELS,
        }.get(kind or "", {})
        return dict(table)

    def table(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` for people: identifiers replaced by display names, columns by labels (values of
        numeric columns untouched: format them with ``styled``)."""
        out = df.copy()
        for col in out.columns:
            if col in _ID_COLUMNS and not pd.api.types.is_numeric_dtype(out[col]):
                out[col] = out[col].map(lambda v, c=col: self.of(c, v))
        return out.rename(columns={c: column_label(str(c)) for c in out.columns})

    def styled(self, df: pd.DataFrame) -> Any:
        """``table(df)`` as a pandas Styler with £, thousands separators and percentages."""
        shown = self.table(df)
        formats = {
            column_label(str(c)): number_format(str(c))
            for c in df.columns
            if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
        }
        return shown.style.format(formats, na_rep="–")
