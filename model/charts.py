"""Charts as pure functions: a tidy contract table in, a plotly Figure out (reports and the app share them).

Every function takes the DataFrame exactly as the engine writes it (the columns of DESIGN.md's output
contract). A table that is absent, empty or lacks a needed column raises ``ChartDataError`` with a
sentence a person can read; reports print that sentence as a note instead of the chart. A ``scenario`` column, where present, overlays several scenarios.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from .labels import VARIANT_LABELS, Labels, column_label

# The template as an object: plotly validates a template named by a string afresh for every
# figure (about 0.2 s each), an object it only copies.
TEMPLATE = pio.templates["plotly_white"]
GBP_M = 1e6  # money is charted in GBP millions: deficits run to hundreds of millions

# Fixed colours for the canonical settings so every chart (and every scenario) reads the same way.
SETTING_COLOURS: dict[str, str] = {
    "mainstream": "#4C78A8",
    "resource_base": "#72B7B2",
    "special": "#F58518",
    "independent": "#E45756",
    "post16": "#54A24B",
    "ap_eotas": "#B279A2",
    "unmet": "#333333",
}
_FALLBACK = ("#9D755D", "#BAB0AC", "#EECA3B", "#FF9DA6", "#79706E", "#D67195", "#8CD17D")
VARIANT_ORDER = ("unmitigated", "optimised")
VARIANT_DASH = {"unmitigated": "dot", "optimised": "solid"}
SCENARIO_COLOURS = ("#1F77B4", "#D62728", "#2CA02C", "#9467BD", "#FF7F0E", "#8C564B", "#17BECF")


# Legends sit above the plot area, clear of the axis titles below it (long legends wrap upwards).
LEGEND_TOP = {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0}
TOP_MARGIN = {"t": 120}
# Charts with panels: the legend goes beside them, in one column. Above them, a legend of many
# entries (ten settings, dozens of localities) wraps upwards over the chart's and panels' titles.
LEGEND_BESIDE_PANELS = {"orientation": "v", "yanchor": "top", "y": 1, "xanchor": "left", "x": 1.02}
PANEL_MARGIN = {"t": 100}


def _names(labels: Labels | None) -> Labels:
    """The labels to show: the scenario's own, or readable fallbacks made from the identifiers."""
    return labels if labels is not None else Labels()


def _variant(v: str) -> str:
    return VARIANT_LABELS.get(v, v)


def wrap(text: str, width: int = 28) -> str:
    """A long category label broken into lines (plotly's ``<br>``) so it never needs truncating."""
    words, lines, line = str(text).split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    lines.append(line)
    return "<br>".join(lines)


class ChartDataError(ValueError):
    """A chart's table is absent, empty or lacks columns; the message says which, for a note."""


def require(df: pd.DataFrame | None, columns: Iterable[str], table: str) -> pd.DataFrame:
    """Return ``df`` if it holds rows and every column in ``columns``; raise ChartDataError otherwise."""
    if df is None:
        raise ChartDataError(f"The {table} table is not part of this run.")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ChartDataError(f"The {table} table lacks column(s): {', '.join(missing)}.")
    if df.empty:
        raise ChartDataError(f"The {table} table has no rows.")
    return df


def setting_colours(settings: Sequence[str]) -> dict[str, str]:
    """Canonical colours for known settings, a stable fallback palette for a scenario's own ones."""
    out: dict[str, str] = {}
    extra = 0
    for s in settings:
        if s in SETTING_COLOURS:
            out[s] = SETTING_COLOURS[s]
        else:
            out[s] = _FALLBACK[extra % len(_FALLBACK)]
            extra += 1
    return out


def band_columns(df: pd.DataFrame, column: str) -> tuple[str, str] | None:
    """Names of the P10/P90 columns of ``column`` (``x_p10`` or ``x_p10_gbp`` style), if both exist."""
    stem = column[: -len("_gbp")] if column.endswith("_gbp") else None
    for lo, hi in (
        (f"{column}_p10", f"{column}_p90"),
        (f"{stem}_p10_gbp", f"{stem}_p90_gbp") if stem else ("", ""),
    ):
        if lo in df.columns and hi in df.columns and df[lo].notna().any():
            return lo, hi
    return None


def central(df: pd.DataFrame, column: str) -> tuple[pd.Series, str]:
    """The line to draw for ``column`` and its basis: the P50 of the paths where the table has it
    (the basis of the bands around it and of the app's cards), else the deterministic forecast."""
    p50 = f"{column}_p50"
    if p50 in df.columns and df[p50].notna().all():
        return df[p50], "P50"
    return df[column], "central forecast"


def _ordered(values: Iterable[str], order: Sequence[str]) -> list[str]:
    vals = list(dict.fromkeys(values))
    return [v for v in order if v in vals] + sorted(v for v in vals if v not in order)


def _scenarios(df: pd.DataFrame) -> list[str | None]:
    return list(dict.fromkeys(df["scenario"])) if "scenario" in df.columns else [None]


def _subset(df: pd.DataFrame, scenario: str | None) -> pd.DataFrame:
    return df if scenario is None else df[df["scenario"] == scenario]


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _band(
    fig: go.Figure, x: pd.Series, lo: pd.Series, hi: pd.Series, colour: str, name: str
) -> None:
    """A shaded P10-P90 band drawn as one closed polygon (so it toggles as one legend item)."""
    xs = np.concatenate([x.to_numpy(), x.to_numpy()[::-1]])
    ys = np.concatenate([hi.to_numpy(), lo.to_numpy()[::-1]])
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            fill="toself",
            fillcolor=_rgba(colour, 0.18),
            line={"width": 0},
            hoverinfo="skip",
            name=name,
            legendgroup=name,
        )
    )


# --------------------------------------------------------------------------- demand


def plans_by_year(demand: pd.DataFrame) -> pd.DataFrame:
    """Total plans per year (and scenario): P50 summed over cells, bands summed where present.

    Summing cell P10/P90 gives a band at least as wide as the band of the total (quantiles do not
    add), so a chart drawn from it errs on the side of more uncertainty, never less.
    """
    df = require(demand, ["year", "plans"], "demand")
    keys = ["scenario", "year"] if "scenario" in df.columns else ["year"]
    cols = ["plans"] + [c for c in ("plans_p10", "plans_p90") if c in df.columns]
    out = df.groupby(keys, sort=True)[cols].sum(min_count=1).reset_index()
    return out


def ehcp_fan_chart(
    demand: pd.DataFrame, totals: pd.DataFrame | None = None, bands: bool = True
) -> go.Figure:
    """EHCP stock by January census year: P50 line with a shaded P10-P90 band where paths > 1.

    ``totals`` (year, plans, plans_p10, plans_p90), when the demand stage provides bands of the total
    itself, replaces the cell sums from ``demand``. ``bands=False`` draws the P50 lines only (several
    scenarios' bands overlap into mud).
    """
    if totals is not None and not totals.empty:
        tot = require(totals, ["year", "plans"], "plan totals")
        exact = True
    else:
        tot = plans_by_year(demand)
        exact = False
    fig = go.Figure()
    for i, scn in enumerate(_scenarios(tot)):
        d = _subset(tot, scn).sort_values("year")
        colour = SCENARIO_COLOURS[i % len(SCENARIO_COLOURS)]
        label = scn or "plans"
        has_band = band_columns(d, "plans")
        band = has_band if bands else None
        if band:
            what = "P10-P90" if exact else "P10-P90 (sum of cells)"
            _band(
                fig, d["year"], d[band[0]], d[band[1]], colour, f"{scn + ' ' if scn else ''}{what}"
            )
        fig.add_trace(
            go.Scatter(
                x=d["year"],
                y=d["plans"],
                mode="lines+markers",
                name=wrap(f"{label} (P50)" if has_band else label, 40),
                line={"color": colour, "width": 2.5},
                hovertemplate="January %{x}: %{y:,.0f} plans<extra></extra>",
            )
        )
    fig.update_layout(
        template=TEMPLATE,
        title="EHCPs by January census year",
        xaxis_title="year (January census; 2025 = academic year 2024/25)",
        yaxis_title="plans",
        hovermode="x unified",
        legend=LEGEND_TOP,
        margin=TOP_MARGIN,
    )
    fig.update_yaxes(rangemode="tozero", tickformat=",.0f")
    fig.update_xaxes(dtick=1)
    return fig


# --------------------------------------------------------------------------- placements


def placement_mix(placements: pd.DataFrame) -> pd.DataFrame:
    """Places in place by variant, year and setting (summed over localities, needs and phases)."""
    df = require(placements, ["year", "setting", "places", "variant"], "placements")
    keys = ["variant", "year", "setting"]
    if "scenario" in df.columns:
        keys = ["scenario", *keys]
    return df.groupby(keys, sort=True)["places"].sum().reset_index()


def placement_mix_chart(
    placements: pd.DataFrame, share: bool = False, labels: Labels | None = None
) -> go.Figure:
    """Stacked places by setting over the years, one panel per variant (unmitigated vs optimised).

    ``share=True`` shows each setting's share of all placed children instead of places; ``labels``
    gives the settings' display names.
    """
    names = _names(labels)
    mix = placement_mix(placements)
    if "scenario" in mix.columns:  # several scenarios: one panel per scenario and variant
        mix = mix.assign(variant=mix["scenario"].astype(str) + ": " + mix["variant"].astype(str))
    variants = _ordered(mix["variant"], VARIANT_ORDER)
    settings = _ordered(mix["setting"], tuple(SETTING_COLOURS))
    colours = setting_colours(settings)
    if share:
        total = mix.groupby(["variant", "year"])["places"].transform("sum")
        mix = mix.assign(places=np.where(total > 0, mix["places"] / total.where(total > 0, 1), 0.0))
    fig = make_subplots(
        rows=1,
        cols=len(variants),
        shared_yaxes=True,
        subplot_titles=[_variant(v) for v in variants],
        horizontal_spacing=0.04,
    )
    for c, variant in enumerate(variants, start=1):
        d = mix[mix["variant"] == variant]
        for s in settings:
            ds = d[d["setting"] == s].sort_values("year")
            if ds.empty:
                continue
            fig.add_trace(
                go.Bar(
                    x=ds["year"],
                    y=ds["places"],
                    name=names.setting(s),
                    legendgroup=s,
                    showlegend=c == 1,
                    marker_color=colours[s],
                    hovertemplate=f"{names.setting(s)} %{{x}}: "
                    + ("%{y:.1%}" if share else "%{y:,.0f} places")
                    + "<extra></extra>",
                ),
                row=1,
                col=c,
            )
    fig.update_layout(
        template=TEMPLATE,
        barmode="stack",
        title="Placement mix by January census year"
        + (" (share of placed children)" if share else ""),
        legend=LEGEND_BESIDE_PANELS,
        margin=PANEL_MARGIN,
    )
    fig.update_yaxes(title_text="share of places" if share else "places", row=1, col=1)
    fig.update_yaxes(tickformat=".0%" if share else ",.0f")
    fig.update_xaxes(dtick=1)
    return fig


# --------------------------------------------------------------------------- finance


def deficit_chart(
    finance: pd.DataFrame, variants: Sequence[str] | None = None, bands: bool = True
) -> go.Figure:
    """Cumulative DSG deficit at 31 March by financial year, per variant, with bands and the Safety
    Valve plan trajectory (dashed) it is judged against. Money in GBP millions.

    ``variants`` limits the lines (a comparison shows the optimised plan only); ``bands=False``
    leaves the P10-P90 bands out. Scenarios sharing one Safety Valve plan share one plan line.
    """
    df = require(finance, ["financial_year", "variant", "cumulative_deficit_gbp"], "finance")
    if variants is not None:
        df = df[df["variant"].isin(list(variants))]
        if df.empty:
            raise ChartDataError(f"The finance table has no {', '.join(variants)} rows.")
    fig = go.Figure()
    scenarios = _scenarios(df)
    plans_drawn: list[np.ndarray] = []
    for i, scn in enumerate(scenarios):
        d_scn = _subset(df, scn)
        colour_scn = SCENARIO_COLOURS[i % len(SCENARIO_COLOURS)]
        prefix = f"{scn}: " if scn else ""
        for j, variant in enumerate(_ordered(d_scn["variant"], VARIANT_ORDER)):
            d = d_scn[d_scn["variant"] == variant].sort_values("financial_year")
            colour = colour_scn if scn else SCENARIO_COLOURS[j % len(SCENARIO_COLOURS)]
            band = band_columns(d, "cumulative_deficit_gbp") if bands else None
            if band:
                _band(
                    fig,
                    d["financial_year"],
                    d[band[0]] / GBP_M,
                    d[band[1]] / GBP_M,
                    colour,
                    f"{prefix}{_variant(variant)} P10-P90",
                )
            line, basis = central(d, "cumulative_deficit_gbp")
            fig.add_trace(
                go.Scatter(
                    x=d["financial_year"],
                    y=line / GBP_M,
                    mode="lines+markers",
                    name=wrap(f"{prefix}{_variant(variant)} ({basis})", 40)
                    if variants is None or len(variants) > 1
                    else wrap(f"{scn or _variant(variant)} ({basis})", 40),
                    line={
                        "color": colour,
                        "width": 2.5,
                        "dash": VARIANT_DASH.get(variant, "solid"),
                    },
                    hovertemplate="FY %{x}: £%{y:,.1f}m<extra>"
                    + f"{prefix}{_variant(variant)} ({basis})</extra>",
                )
            )
        if "plan_cumulative_deficit_gbp" in d_scn.columns:
            plan = (
                d_scn.dropna(subset=["plan_cumulative_deficit_gbp"])
                .groupby("financial_year", sort=True)["plan_cumulative_deficit_gbp"]
                .first()
            )
            same = any(np.array_equal(plan.to_numpy(), p, equal_nan=True) for p in plans_drawn)
            if not plan.empty and not same:
                plans_drawn.append(plan.to_numpy())
                fig.add_trace(
                    go.Scatter(
                        x=plan.index,
                        y=plan.to_numpy() / GBP_M,
                        mode="lines+markers",
                        name=wrap(f"{prefix}Safety Valve plan" if i else "Safety Valve plan", 40),
                        line={"color": "#000000", "width": 2, "dash": "dash"},
                        marker={"symbol": "diamond"},
                        hovertemplate="FY %{x}: plan £%{y:,.1f}m<extra></extra>",
                    )
                )
    fig.add_hline(y=0, line={"color": "#888888", "width": 1})
    fig.update_layout(
        template=TEMPLATE,
        title="Cumulative DSG deficit against the Safety Valve plan",
        xaxis_title="financial year (2025 = April 2025 to March 2026)",
        yaxis_title="cumulative deficit at 31 March (£m; positive = deficit)",
        hovermode="x unified",
        legend=LEGEND_TOP,
        margin=TOP_MARGIN,
    )
    fig.update_xaxes(dtick=1)
    return fig


def balance_chart(finance: pd.DataFrame) -> go.Figure:
    """In-year High Needs Block balance (income minus spend) by financial year and variant, £m."""
    df = require(finance, ["financial_year", "variant", "in_year_balance_gbp"], "finance")
    fig = go.Figure()
    for j, variant in enumerate(_ordered(df["variant"], VARIANT_ORDER)):
        d = df[df["variant"] == variant].sort_values("financial_year")
        bars, basis = central(d, "in_year_balance_gbp")
        fig.add_trace(
            go.Bar(
                x=d["financial_year"],
                y=bars / GBP_M,
                name=f"{_variant(variant)} ({basis})",
                marker_color=SCENARIO_COLOURS[j % len(SCENARIO_COLOURS)],
                hovertemplate=f"FY %{{x}}: £%{{y:,.1f}}m<extra>{_variant(variant)} ({basis})</extra>",
            )
        )
    fig.update_layout(
        template=TEMPLATE,
        barmode="group",
        title="In-year High Needs Block balance (negative = overspend)",
        xaxis_title="financial year",
        yaxis_title="£m",
        legend=LEGEND_TOP,
        margin=TOP_MARGIN,
    )
    fig.update_xaxes(dtick=1)
    return fig


# --------------------------------------------------------------------------- sufficiency


def _pick_year(df: pd.DataFrame, year: int | None, column: str = "year") -> int:
    years = sorted(df[column].unique())
    if year is None:
        return int(years[-1])
    if year not in years:
        raise ChartDataError(f"Year {year} is not in the table (years {years[0]}-{years[-1]}).")
    return int(year)


def sufficiency_chart(
    sufficiency: pd.DataFrame, year: int | None = None, labels: Labels | None = None
) -> go.Figure:
    """Demand against capacity by provider locality for one year (default: the last), a panel per
    capacity-limited setting; settings without a capacity limit (infinite capacity) are left out."""
    names = _names(labels)
    df = require(
        sufficiency,
        ["year", "provider_locality", "setting", "demand_places", "capacity_places"],
        "sufficiency",
    )
    y = _pick_year(df, year)
    d = df[(df["year"] == y) & np.isfinite(df["capacity_places"].astype(float))]
    if d.empty:
        raise ChartDataError(f"No capacity-limited setting has places in {y}.")
    # the optimised plan's new places, drawn on top of the committed ones: a gap they close is
    # not a shortfall (the gap column is demand minus committed places only)
    new = "new_capacity_places" in d.columns
    cols = ["demand_places", "capacity_places"] + (["new_capacity_places"] if new else [])
    d = d.groupby(["setting", "provider_locality"], sort=True)[cols].sum()
    d = d.reset_index()
    settings = _ordered(d["setting"], tuple(SETTING_COLOURS))
    d["locality_name"] = d["provider_locality"].map(names.locality)
    fig = make_subplots(
        rows=len(settings),
        cols=1,
        shared_xaxes=True,
        subplot_titles=[names.setting(s) for s in settings],
        vertical_spacing=0.08,
    )

    def bar(
        ds: pd.DataFrame,
        r: int,
        column: str,
        name: str,
        group: str,
        colour: str,
        base: pd.Series | None = None,
    ) -> None:
        # one panel's bars; the same offsetgroup puts the new places on the committed ones
        fig.add_trace(
            go.Bar(
                x=ds["locality_name"],
                y=ds[column],
                base=base,
                name=name,
                legendgroup=name,
                offsetgroup=group,
                showlegend=r == 1,
                marker_color=colour,
                hovertemplate=f"%{{x}}: {name} %{{y:,.0f}}<extra></extra>",
            ),
            row=r,
            col=1,
        )

    for r, s in enumerate(settings, start=1):
        ds = d[d["setting"] == s]
        bar(ds, r, "capacity_places", "committed capacity", "capacity", "#BAB0AC")
        if new:
            base = ds["capacity_places"]
            bar(
                ds,
                r,
                "new_capacity_places",
                "new places (optimised plan)",
                "capacity",
                "#59A14F",
                base,
            )
        bar(ds, r, "demand_places", "places demanded", "demand", SETTING_COLOURS.get(s, "#4C78A8"))
        fig.update_yaxes(title_text="places", row=r, col=1)
    fig.update_layout(
        template=TEMPLATE,
        barmode="group",
        height=max(320, 240 * len(settings)),
        title=f"Sufficiency by provider locality, January {y}: places demanded vs capacity"
        + (" (committed, and the plan's new places on top)" if new else ""),
        legend=LEGEND_BESIDE_PANELS,
        margin=PANEL_MARGIN,
    )
    return fig


def sufficiency_heatmap(
    sufficiency: pd.DataFrame,
    year: int | None = None,
    value: str = "gap_places",
    labels: Labels | None = None,
) -> go.Figure:
    """Heatmap of ``value`` (default the gap, demand minus capacity) by provider locality and setting
    for one year, with the shadow price (what one more place saves) in the hover.

    A value that can take either sign (the gap) gets a diverging scale centred on zero; one that is
    never negative (a shadow price) a sequential scale from zero."""
    names = _names(labels)
    df = require(sufficiency, ["year", "provider_locality", "setting", value], "sufficiency")
    y = _pick_year(df, year)
    d = df[df["year"] == y]
    grid = d.pivot_table(index="setting", columns="provider_locality", values=value, aggfunc="sum")
    grid = grid.replace([np.inf, -np.inf], np.nan)
    settings = _ordered(grid.index, tuple(SETTING_COLOURS))
    grid = grid.loc[settings]
    custom = None
    hover = "%{x} · %{y}: %{z:,.0f}<extra></extra>"
    if "shadow_price_gbp" in d.columns:
        price = d.pivot_table(
            index="setting", columns="provider_locality", values="shadow_price_gbp", aggfunc="sum"
        ).reindex(index=grid.index, columns=grid.columns)
        custom = price.to_numpy()
        hover = "%{x} · %{y}: %{z:,.0f}<br>one more place saves £%{customdata:,.0f}<extra></extra>"
    z = grid.to_numpy()
    zmax = float(np.nanmax(np.abs(z))) if grid.notna().any().any() else 1.0
    zmax = zmax or 1.0
    signed = bool(np.nanmin(z) < 0) if grid.notna().any().any() else False
    signed = signed or value.startswith("gap")
    money = value.endswith("_gbp")
    label = column_label(value)
    if money:
        hover = hover.replace("%{z:,.0f}", "£%{z:,.0f}")
    scale: dict[str, object] = (
        {"colorscale": "RdBu_r", "zmid": 0, "zmin": -zmax, "zmax": zmax}
        if signed
        else {"colorscale": "YlOrRd", "zmin": 0, "zmax": zmax}
    )
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[wrap(names.locality(c), 14) for c in grid.columns],
            y=[wrap(names.setting(s), 24) for s in grid.index],
            customdata=custom,
            colorbar={
                "title": {"text": wrap(label, 16), "side": "top"},
                "tickformat": ",.0f",
                "tickprefix": "£" if money else "",
            },
            hovertemplate=hover,
            **scale,
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        title=f"{label}, January {y}",
        xaxis_title="provider locality",
        yaxis_title="setting",
    )
    return fig


# --------------------------------------------------------------------------- builds


def build_plan_chart(builds: pd.DataFrame, labels: Labels | None = None) -> go.Figure:
    """Recommended new places by opening year, stacked by provider locality, a panel per setting."""
    names = _names(labels)
    df = require(builds, ["year_open", "provider_locality", "setting", "places"], "builds")
    df = df[df["places"] > 0]
    if df.empty:
        raise ChartDataError("The optimised plan builds no new places.")
    settings = _ordered(df["setting"], tuple(SETTING_COLOURS))
    localities = sorted(df["provider_locality"].unique())
    palette = SCENARIO_COLOURS + _FALLBACK
    fig = make_subplots(
        rows=1,
        cols=len(settings),
        shared_yaxes=True,
        subplot_titles=[wrap(names.setting(s), 40) for s in settings],
    )
    for c, s in enumerate(settings, start=1):
        ds = df[df["setting"] == s]
        for k, loc in enumerate(localities):
            dl = ds[ds["provider_locality"] == loc].groupby("year_open", sort=True)["places"].sum()
            if dl.empty:
                continue
            fig.add_trace(
                go.Bar(
                    x=dl.index,
                    y=dl.to_numpy(),
                    name=names.locality(loc),
                    legendgroup=loc,
                    showlegend=names.locality(loc) not in {t.name for t in fig.data},
                    marker_color=palette[k % len(palette)],
                    hovertemplate=f"{names.locality(loc)}, {names.setting(s)}: "
                    "%{y:,.0f} places open in %{x}<extra></extra>",
                ),
                row=1,
                col=c,
            )
    fig.update_layout(
        template=TEMPLATE,
        barmode="stack",
        title="Build plan: new places by year they open",
        legend={**LEGEND_BESIDE_PANELS, "title": "provider locality"},
        margin=PANEL_MARGIN,
    )
    fig.update_yaxes(title_text="new places", row=1, col=1)
    fig.update_xaxes(dtick=1, title_text="year open (January census year)")
    return fig


# --------------------------------------------------------------------------- comparison


def comparison_chart(
    comparison: pd.DataFrame,
    columns: Sequence[str] = (
        "cumulative_deficit_horizon_unmitigated_gbp",
        "cumulative_deficit_horizon_optimised_gbp",
    ),
    title: str = "Cumulative DSG deficit at the horizon",
    label: str = "slug",
    series_names: Mapping[str, str] | None = None,
) -> go.Figure:
    """Grouped bars of headline money figures per scenario (one row of comparison.csv each), £m;
    ``label`` names the column that labels the bars (a sweep's short value labels, say) and
    ``series_names`` the figures' display names (default: readable forms of the column names)."""
    series_names = series_names or {}
    df = require(comparison, [label, *columns], "comparison")
    df = df.dropna(subset=list(columns), how="all")
    if df.empty:
        raise ChartDataError(f"No scenario reports {', '.join(columns)}.")
    fig = go.Figure()
    for j, col in enumerate(columns):
        fig.add_trace(
            go.Bar(
                x=[wrap(v, 24) for v in df[label].astype(str)],
                y=pd.to_numeric(df[col], errors="coerce") / GBP_M,
                name=wrap(series_names.get(col) or column_label(col), 60),
                marker_color=SCENARIO_COLOURS[j % len(SCENARIO_COLOURS)],
                hovertemplate="%{x}: £%{y:,.1f}m<extra></extra>",
            )
        )
    fig.update_layout(
        template=TEMPLATE,
        barmode="group",
        title=title,
        yaxis_title="£m",
        # Legend above the plot: long scenario labels below it get the room they need.
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        margin={"t": 110},
    )
    fig.update_xaxes(automargin=True, tickangle=0)
    return fig


def sweep_chart(
    comparison: pd.DataFrame,
    x: str,
    value: str = "cumulative_deficit_horizon_optimised_gbp",
    colour: str | None = None,
) -> go.Figure:
    """A headline figure against one swept parameter, a line per value of a second parameter."""
    df = require(comparison, [x, value] + ([colour] if colour else []), "comparison")
    df = df.dropna(subset=[value])
    if df.empty:
        raise ChartDataError(f"No scenario reports {value}.")
    money = value.endswith("_gbp")
    fig = go.Figure()
    groups = [(None, df)] if colour is None else list(df.groupby(colour, sort=True))
    for k, (g, d) in enumerate(groups):
        d = d.sort_values(x)
        fig.add_trace(
            go.Scatter(
                x=d[x],
                y=d[value] / GBP_M if money else d[value],
                mode="lines+markers",
                name=column_label(value) if g is None else f"{colour}={g}",
                line={"color": SCENARIO_COLOURS[k % len(SCENARIO_COLOURS)]},
            )
        )
    fig.update_layout(
        template=TEMPLATE,
        title=f"{column_label(value)} by {x}",
        xaxis_title=x,
        yaxis_title="£m" if money else column_label(value),
        legend=LEGEND_TOP,
        margin=TOP_MARGIN,
    )
    return fig


# --------------------------------------------------------------------------- charts the app adds
# Added by the app engineer: the build plan on a locality chart, drawn on plain longitude/latitude
# axes so it needs no map tiles and works offline.


def build_locality_map(
    builds: pd.DataFrame | None, localities: pd.DataFrame, labels: Labels | None = None
) -> go.Figure:
    """Localities at their coordinates (``localities``: id, name, lat, lon) with a circle per
    provider locality sized by the new places the plan opens there (hover: places by setting)."""
    names = _names(labels)
    locs = require(localities, ["id", "name", "lat", "lon"], "localities")
    locs = locs.dropna(subset=["lat", "lon"])
    if locs.empty:
        raise ChartDataError("The scenario gives no coordinates (lat/lon) for its localities.")
    fig = go.Figure()
    built = pd.DataFrame(columns=["provider_locality", "setting", "places"])
    if builds is not None and not builds.empty:
        b = require(builds, ["provider_locality", "setting", "places"], "builds")
        built = (
            b[b["places"] > 0]
            .groupby(["provider_locality", "setting"], as_index=False)["places"]
            .sum()
        )
    if not built.empty:
        at = locs.set_index("id")
        peak = float(built.groupby("provider_locality")["places"].sum().max())
        settings = _ordered(built["setting"], tuple(SETTING_COLOURS))
        colours = setting_colours(settings)
        for k, s in enumerate(settings):
            d = built[(built["setting"] == s) & built["provider_locality"].isin(at.index)]
            if d.empty:
                continue
            # Area proportional to places; settings side by side so both stay visible in one locality.
            offset = (k - (len(settings) - 1) / 2) * 0.06
            fig.add_trace(
                go.Scatter(
                    x=at.loc[d["provider_locality"], "lon"].to_numpy() + offset,
                    y=at.loc[d["provider_locality"], "lat"].to_numpy(),
                    mode="markers",
                    marker={
                        "size": 12 + 48 * np.sqrt(d["places"].to_numpy() / peak),
                        "color": colours[s],
                        "opacity": 0.55,
                        "line": {"width": 1, "color": "#333333"},
                    },
                    customdata=np.stack(
                        [at.loc[d["provider_locality"], "name"], d["places"]], axis=-1
                    ),
                    name=names.setting(s),
                    hovertemplate="%{customdata[0]}: %{customdata[1]:,.0f} new places, "
                    + names.setting(s)
                    + "<extra></extra>",
                )
            )
    # Localities last, so their names sit on top of the circles.
    fig.add_trace(
        go.Scatter(
            x=locs["lon"],
            y=locs["lat"],
            mode="markers+text",
            text=locs["name"],
            textposition="top center",
            textfont={"size": 13, "color": "#111111"},
            marker={"color": "#333333", "size": 7},
            name="locality",
            hovertemplate="%{text}<extra></extra>",
        )
    )
    mid_lat = float(locs["lat"].mean())
    fig.update_layout(
        template=TEMPLATE,
        title="Build plan by locality: new places over the forecast"
        if not built.empty
        else "Localities (the optimised plan builds no new places)",
        xaxis_title="longitude",
        yaxis_title="latitude",
        legend={**LEGEND_TOP, "title": "setting"},
        margin=TOP_MARGIN,
        height=560,
    )
    # One degree of latitude spans 1/cos(latitude) times the ground distance of one of longitude.
    fig.update_yaxes(scaleanchor="x", scaleratio=1 / np.cos(np.radians(mid_lat)))
    pad = 0.15
    # constrain="domain": keep the ranges and shrink the plot area to the true aspect instead.
    fig.update_xaxes(range=[locs["lon"].min() - pad, locs["lon"].max() + pad], constrain="domain")
    fig.update_yaxes(range=[locs["lat"].min() - pad, locs["lat"].max() + pad])
    return fig
