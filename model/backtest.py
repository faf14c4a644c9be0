"""Rolling-origin backtest of the demand forecast against naive baselines (``sendplan backtest``).

For each origin January O the model is fitted only on what was published by then: January counts
up to O and the flows of calendar years before O (new plans of calendar year Y are known by
January Y + 1); the pooled prior is itself estimated from data up to O. It then forecasts every
later January with a published count, and three naive baselines do the same from the same counts:

- ``cagr``: compound growth from the first to the last history year, continued;
- ``linear``: a least-squares line through the history years;
- ``last_growth``: the last year's growth, continued.

Speed and scope: only the demand stage runs, on one locality and one need group (the county total
is what is scored), without the scenario's levers and backlog events (they are plans for after
the origin, not history). The age profiles (stock, new plans and cessation by age) and population
are structural inputs taken from the LA's scenario (``sendplan init``'s for an SEN2 LA): SEN2
publishes ages only from 2022-2024, so they are the one input not limited to the origin.
"""

from __future__ import annotations

import argparse
import html
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .scenario import Demand, Locality, Population, Scenario

if TYPE_CHECKING:
    import plotly.graph_objects as go

ORIGINS = (2021, 2022, 2023)
MODEL = "sendplan"  # the model's rows in backtest.csv
BASELINES = ("cagr", "linear", "last_growth")
METHODS = (MODEL, *BASELINES)
COLUMNS = [
    "la_code",
    "la_name",
    "origin",
    "year",
    "horizon",
    "actual",
    "p10",
    "p50",
    "p90",
    "method",
]
LOCALITY = "la"
NEED = "all"


@dataclass
class LaData:
    """One LA's published series and the scenario its structural inputs come from."""

    code: str
    name: str
    stock: pd.Series  # January counts by year
    new: pd.Series  # new plans by calendar year
    ceased: pd.Series  # ceased plans by calendar year (as SEN2 counts them: transfers included)
    template: Scenario | None  # None: `sendplan init`'s scenario for the LA, built when needed

    def scenario(self) -> Scenario:
        """The scenario the structural inputs come from (``sendplan init``'s for an SEN2 LA)."""
        if self.template is None:
            from .io import validate_mapping
            from .sources.la_scenario import scenario_for_la

            mapping, _ = scenario_for_la(self.code)
            self.template = validate_mapping(mapping, f"init:{self.code}")
        return self.template


# --------------------------------------------------------------------------- baselines


def naive_forecasts(history: pd.Series, years: list[int]) -> dict[str, np.ndarray]:
    """The three baselines' forecasts for ``years`` from January counts ``history`` (index year).

    With a single history year every baseline is flat; ``last_growth`` needs two years, ``cagr``
    and ``linear`` use every year given.
    """
    h = history.dropna().sort_index()
    x = h.index.to_numpy(float)
    y = h.to_numpy(float)
    yrs = np.asarray(years, dtype=float)
    last_x, last_y = x[-1], y[-1]
    ahead = yrs - last_x
    if len(h) < 2:
        flat = np.full(len(yrs), last_y)
        return {"cagr": flat, "linear": flat.copy(), "last_growth": flat.copy()}
    cagr = (last_y / y[0]) ** (1.0 / (last_x - x[0])) if y[0] > 0 else 1.0
    slope, icpt = np.polyfit(x, y, 1)
    step = y[-1] / y[-2] if y[-2] > 0 else 1.0
    return {
        "cagr": last_y * cagr**ahead,
        "linear": icpt + slope * yrs,
        "last_growth": last_y * step**ahead,
    }


# --------------------------------------------------------------------------- data


def la_data(code: str, template: Scenario | None = None) -> LaData:
    """Published SEN2 series of one LA (name, GSS code or number) from the shipped panel; the
    structural inputs from ``template``, or by default from ``sendplan init``'s scenario."""
    from .sources import sen2

    area = sen2.find_la(code)
    return LaData(
        code=area.code,
        name=area.name,
        stock=sen2.series(area.code, "plans"),
        new=sen2.series(area.code, "new_plans"),
        ceased=sen2.series(area.code, "ceased_plans"),
        template=template,
    )


def scenario_data(scn: Scenario, code: str = "", name: str | None = None) -> LaData:
    """The series a scenario file carries: ``demand.history`` and its all-ages ``flow_history``."""
    dm = scn.demand
    flows = [r for r in dm.flow_history if r.age_min is None]

    def flow(kind: str) -> pd.Series:
        rows = {r.year: r.plans for r in flows if r.flow == kind}
        return pd.Series(rows, dtype=float).sort_index()

    return LaData(
        code=code,
        name=name or scn.meta.la_name or scn.meta.name,
        stock=pd.Series(dm.history, dtype=float).sort_index(),
        new=flow("new"),
        ceased=flow("ceased"),
        template=scn,
    )


def scenario_as_of(data: LaData, origin: int, last_year: int) -> Scenario:
    """The LA's demand model as it could have been set up in January ``origin``.

    History: January counts up to ``origin``; flows of calendar years before it. The new-plan
    rate is re-based on the mean of the last two published years of new plans (the fit moves it);
    one locality and one need group; no levers or backlog events.
    """
    tpl = data.scenario()
    stock = data.stock[data.stock.index <= origin]
    new = data.new[data.new.index < origin]
    ceased = data.ceased[data.ceased.index < origin]
    pop = tpl.population
    base_pop = float(sum(pop.base_0_25.values())) or 1.0
    dm = tpl.demand
    requests, conversion = dm.requests_per_1000, dm.conversion_rate
    if len(new):
        requests, conversion = 1000.0 * float(new.tail(2).mean()) / base_pop, 1.0
    flows = [{"year": int(y), "flow": "new", "plans": float(v)} for y, v in new.items()]
    flows += [{"year": int(y), "flow": "ceased", "plans": float(v)} for y, v in ceased.items()]
    demand = Demand.model_validate(
        {
            "needs": [NEED],
            "history": {int(y): float(v) for y, v in stock.items()},
            "flow_history": flows,
            "stock_age_shares": list(dm.stock_age_shares),
            "need_shares": {NEED: 1.0},
            "requests_per_1000": requests,
            "conversion_rate": conversion,
            "new_age_shares": list(dm.new_age_shares),
            "cessation_rate": dm.cessation_rate,
            "cessation_by_age": dict(dm.cessation_by_age),
            "calibration": {
                "enabled": True,
                "fit": ["incidence", "growth", "cessation"],
                "growth_prior": "pooled",
            },
            "uncertainty": {"parameters": "fitted", "poisson": dm.uncertainty.poisson},
        }
    )
    population = Population.model_validate(
        {
            "base_0_25": {LOCALITY: base_pop},
            "age_shares": list(pop.age_shares),
            "growth": pop.growth,
        }
    )
    geo = tpl.geography.model_copy(
        update={
            "localities": [Locality(id=LOCALITY, name=data.name, lat=50.0, lon=-3.0)],
            "distances_km": None,
        }
    )
    meta = tpl.meta.model_copy(update={"base_year": origin, "horizon_years": last_year - origin})
    # Only the demand stage reads this scenario, so the other sections keep the template's
    # localities and needs (model_copy does not re-run the cross-section checks).
    return tpl.model_copy(
        update={"meta": meta, "geography": geo, "population": population, "demand": demand}
    )


# --------------------------------------------------------------------------- scoring


def backtest_la(data: LaData, origins: tuple[int, ...], paths: int, seed: int) -> pd.DataFrame:
    """Rows of backtest.csv for one LA: every origin with history, every later published January."""
    from .demand import run_demand

    rows = []
    published = data.stock.dropna()
    for origin in origins:
        hist = published[published.index <= origin]
        actual = published[published.index > origin]
        if len(hist) < 2 or actual.empty or origin not in hist.index:
            continue
        years = [int(y) for y in actual.index]
        scn = scenario_as_of(data, origin, max(years))
        res = run_demand(scn, paths, seed, threads=1)
        tot = res.path_totals()  # [P, T] from the origin
        idx = [res.years.index(y) for y in years]
        q10, q50, q90 = np.quantile(tot[:, idx], [0.1, 0.5, 0.9], axis=0)
        base = {"la_code": data.code, "la_name": data.name, "origin": origin}
        for i, y in enumerate(years):
            rows.append(
                base
                | {"year": y, "horizon": y - origin, "actual": float(actual[y])}
                | {"p10": q10[i], "p50": q50[i], "p90": q90[i], "method": MODEL}
            )
        for method, f in naive_forecasts(hist, years).items():
            for i, y in enumerate(years):
                rows.append(
                    base
                    | {"year": y, "horizon": y - origin, "actual": float(actual[y])}
                    | {"p10": np.nan, "p50": float(f[i]), "p90": np.nan, "method": method}
                )
    return pd.DataFrame(rows, columns=COLUMNS)


def _one(args: tuple[LaData, tuple[int, ...], int, int]) -> pd.DataFrame:
    return backtest_la(*args)


def run_backtest(
    items: list[LaData], origins: tuple[int, ...], paths: int, seed: int, jobs: int = 1
) -> pd.DataFrame:
    """backtest.csv rows for every LA (in the order given), in ``jobs`` processes (0 = per CPU)."""
    work = [(d, tuple(origins), paths, seed) for d in items]
    n = jobs if jobs > 0 else os.cpu_count() or 1
    if n <= 1 or len(work) <= 1:
        frames = [_one(w) for w in work]
    else:
        with ProcessPoolExecutor(max_workers=min(n, len(work))) as pool:
            frames = list(pool.map(_one, work, chunksize=max(1, len(work) // (4 * n))))
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    for c in ("p10", "p50", "p90"):
        out[c] = out[c].astype(float).round(1)
    return out


def scores(bt: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Summary tables: MAPE by method and horizon, and by method and origin (with coverage, bias).

    ``ape_pct`` = 100 |p50 - actual| / actual; bias = mean of 100 (p50 - actual) / actual;
    coverage = share of actuals inside [p10, p90] (the model only).
    """
    d = bt.copy()
    d["ape_pct"] = 100.0 * (d["p50"] - d["actual"]).abs() / d["actual"]
    d["err_pct"] = 100.0 * (d["p50"] - d["actual"]) / d["actual"]
    d["inside"] = (d["actual"] >= d["p10"]) & (d["actual"] <= d["p90"])
    order = [m for m in METHODS if m in set(d["method"])]
    by_h = d.pivot_table(index="horizon", columns="method", values="ape_pct", aggfunc="mean")
    by_h = by_h.reindex(columns=order)
    by_h.loc["all"] = d.groupby("method")["ape_pct"].mean().reindex(order)
    g = d.groupby(["origin", "method"])
    by_o = pd.DataFrame(
        {
            "mape_pct": g["ape_pct"].mean(),
            "bias_pct": g["err_pct"].mean(),
            "forecasts": g.size(),
        }
    ).reset_index()
    m = d[d["method"] == MODEL]
    cov = m.groupby("origin")["inside"].mean().mul(100.0).rename("coverage_p10_p90_pct")
    by_o = by_o.merge(cov.reset_index(), on="origin", how="left")
    by_o.loc[by_o["method"] != MODEL, "coverage_p10_p90_pct"] = np.nan
    by_o["method"] = pd.Categorical(by_o["method"], order)
    by_o = by_o.sort_values(["origin", "method"]).reset_index(drop=True)
    by_o["method"] = by_o["method"].astype(str)
    best = (
        by_o[by_o["method"] != MODEL]
        .sort_values("mape_pct")
        .groupby("origin")
        .first()[["method", "mape_pct"]]
    )
    mod = by_o[by_o["method"] == MODEL].set_index("origin")
    verdict = pd.DataFrame(
        {
            "model_mape_pct": mod["mape_pct"],
            "best_naive": best["method"],
            "best_naive_mape_pct": best["mape_pct"],
            "improvement_pct": 100.0 * (1.0 - mod["mape_pct"] / best["mape_pct"]),
            "coverage_p10_p90_pct": mod["coverage_p10_p90_pct"],
            "bias_pct": mod["bias_pct"],
            "las": d[d["method"] == MODEL].groupby("origin")["la_code"].nunique(),
        }
    ).reset_index()
    return {"by_horizon": by_h.reset_index(), "by_origin": by_o, "verdict": verdict}


# --------------------------------------------------------------------------- reports

VERDICT_HEADERS = {
    "origin": "Origin (January)",
    "model_mape_pct": "sendplan MAPE %",
    "best_naive": "Best naive",
    "best_naive_mape_pct": "Best naive MAPE %",
    "improvement_pct": "Improvement %",
    "coverage_p10_p90_pct": "P10-P90 coverage %",
    "bias_pct": "sendplan bias %",
    "las": "LAs",
}


def terminal_text(sc: dict[str, pd.DataFrame]) -> str:
    """The scores as plain-text tables for the terminal."""
    by_h = sc["by_horizon"].copy()
    by_h["horizon"] = by_h["horizon"].astype(str)
    v = sc["verdict"].rename(columns=VERDICT_HEADERS)
    by_o = sc["by_origin"]
    return "\n".join(
        [
            "Mean absolute percentage error of the January count, by horizon (years) and method:",
            by_h.to_string(index=False, float_format=lambda x: f"{x:.2f}"),
            "",
            "By origin: MAPE, bias (mean signed error) and P10-P90 coverage of the actuals:",
            by_o.to_string(index=False, float_format=lambda x: f"{x:.2f}", na_rep=""),
            "",
            "sendplan against the best naive baseline at each origin:",
            v.to_string(index=False, float_format=lambda x: f"{x:.2f}", na_rep=""),
        ]
    )


def _figure(sc: dict[str, pd.DataFrame]) -> go.Figure:
    import plotly.graph_objects as go

    by_h = sc["by_horizon"]
    by_h = by_h[by_h["horizon"] != "all"]
    fig = go.Figure()
    for m in [c for c in by_h.columns if c != "horizon"]:
        fig.add_trace(
            go.Scatter(
                x=by_h["horizon"].astype(int),
                y=by_h[m],
                name=m,
                mode="lines+markers",
                line={"width": 3 if m == MODEL else 1.5, "dash": "solid" if m == MODEL else "dot"},
            )
        )
    fig.update_layout(
        template="plotly_white",
        xaxis_title="Years ahead of the origin",
        yaxis_title="Mean absolute % error of the January count",
        height=420,
        legend_title_text="method",
    )
    fig.update_xaxes(dtick=1)
    return fig


def render_html(bt: pd.DataFrame, sc: dict[str, pd.DataFrame], attribution: str) -> str:
    """backtest.html: what was done in plain words, the chart and the tables (offline page)."""
    from .reports import _page

    def table(df: pd.DataFrame, headers: dict[str, str] | None = None) -> str:
        return df.rename(columns=headers or {}).to_html(
            index=False, float_format=lambda x: f"{x:.2f}", na_rep="", border=0
        )

    origins = ", ".join(str(o) for o in sorted(bt["origin"].unique()))
    n_la = bt["la_code"].nunique() if not bt.empty else 0
    intro = (
        f"<p>For each origin January ({origins}) the demand model was fitted only on what had "
        "been published by then, then its forecast of each later January count was compared "
        "with the count published since. Three naive rules forecast from the same January "
        "counts: compound growth (cagr), a straight line (linear) and last year's growth "
        f"continued (last_growth). {n_la} local authorities.</p>"
        "<p>MAPE is the mean absolute percentage error; bias the mean signed error (negative: "
        "the forecast was too low); coverage the share of actual counts inside the model's "
        "P10-P90 band (about 80% if the band is honest).</p>"
    )
    fig = _figure(sc).to_html(include_plotlyjs=False, full_html=False, div_id="mape")
    body = (
        "<h1>Backtest: the demand forecast against what happened</h1>"
        + intro
        + "<h2>Against the best naive rule</h2>"
        + table(sc["verdict"], VERDICT_HEADERS)
        + "<h2>Error by horizon</h2>"
        + fig
        + table(sc["by_horizon"])
        + "<h2>By origin and method</h2>"
        + table(sc["by_origin"])
        + f"<p class='disclaimer'>{html.escape(attribution)}</p>"
    )
    return _page("sendplan backtest", body)


def write_xlsx(bt: pd.DataFrame, sc: dict[str, pd.DataFrame], path: Path, attribution: str) -> None:
    """backtest.xlsx: the summary sheet (verdict, by horizon with a chart, by origin), forecasts."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"nan_inf_to_errors": True})
    try:
        bold = wb.add_format({"bold": True})
        head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "bottom": 1, "text_wrap": True})
        num = wb.add_format({"num_format": "0.00"})
        ws = wb.add_worksheet("backtest")
        ws.set_column(0, 8, 16)
        row = 0

        def block(title: str, df: pd.DataFrame) -> tuple[int, int]:
            nonlocal row
            ws.write(row, 0, title, bold)
            ws.write_row(row + 1, 0, [str(c) for c in df.columns], head)
            first = row + 2
            for i, rec in enumerate(df.itertuples(index=False)):
                for j, v in enumerate(rec):
                    if isinstance(v, float | np.floating):
                        ws.write_number(first + i, j, float(v), num) if np.isfinite(
                            v
                        ) else ws.write_blank(first + i, j, None)
                    elif isinstance(v, int | np.integer):
                        ws.write_number(first + i, j, int(v))
                    else:
                        ws.write_string(first + i, j, str(v))
            row = first + len(df) + 1
            return first, first + len(df) - 1

        block("sendplan against the best naive baseline", sc["verdict"])
        by_h = sc["by_horizon"].copy()
        by_h["horizon"] = by_h["horizon"].astype(str)
        f, last = block("MAPE % by horizon (years) and method", by_h)
        chart = wb.add_chart({"type": "line"})
        for j, m in enumerate(by_h.columns[1:], start=1):
            chart.add_series(
                {
                    "name": m,
                    "categories": ["backtest", f, 0, last - 1, 0],
                    "values": ["backtest", f, j, last - 1, j],
                    "marker": {"type": "circle"},
                }
            )
        chart.set_title({"name": "Mean absolute % error by horizon"})
        chart.set_x_axis({"name": "years ahead"})
        chart.set_y_axis({"name": "MAPE %"})
        block("By origin and method (bias, coverage of P10-P90)", sc["by_origin"])
        ws.write(row, 0, attribution)
        ws.insert_chart(1, 10, chart)
        fc = wb.add_worksheet("forecasts")
        fc.write_row(0, 0, COLUMNS, head)
        for i, rec in enumerate(bt[COLUMNS].itertuples(index=False), start=1):
            for j, v in enumerate(rec):
                if isinstance(v, str):
                    fc.write_string(i, j, v)
                elif v is not None and np.isfinite(v):
                    fc.write_number(i, j, float(v))
        fc.freeze_panes(1, 0)
    finally:
        wb.close()


def write_outputs(bt: pd.DataFrame, out: Path, attribution: str) -> dict[str, pd.DataFrame]:
    """backtest.csv (the contract columns), backtest.html and backtest.xlsx, all or nothing."""
    from .io import atomic_folder

    sc = scores(bt)
    with atomic_folder(out) as tmp:
        bt[COLUMNS].to_csv(tmp / "backtest.csv", index=False, lineterminator="\n")
        (tmp / "backtest.html").write_text(render_html(bt, sc, attribution), encoding="utf-8")
        write_xlsx(bt, sc, tmp / "backtest.xlsx", attribution)
    return sc


# --------------------------------------------------------------------------- command line


def add_arguments(cmd: argparse.ArgumentParser) -> None:
    """Options of ``sendplan backtest``."""
    cmd.add_argument(
        "scenarios",
        nargs="*",
        help="scenario YAML files scored on their own demand.history and flow_history "
        "(default with no --la/--all: the embedded Devon)",
    )
    cmd.add_argument(
        "--la",
        action="append",
        default=[],
        metavar="NAME",
        help="a local authority by name, GSS code or LA number, scored on the shipped SEN2 "
        "data; repeatable",
    )
    cmd.add_argument(
        "--all",
        action="store_true",
        help="every LA with published January counts for every year 2019-2025",
    )
    cmd.add_argument(
        "--origins",
        default=",".join(str(o) for o in ORIGINS),
        metavar="YEAR,YEAR,...",
        help="origin Januaries (default: %(default)s)",
    )
    cmd.add_argument("--out", default="backtest", metavar="DIR", help="output folder")
    cmd.add_argument("--paths", type=int, default=200, help="Monte Carlo paths per forecast")
    cmd.add_argument("--seed", type=int, default=20250331, help="random seed")
    cmd.add_argument(
        "--jobs", type=int, default=1, help="LAs scored in parallel processes (0 = one per CPU)"
    )


def parse_origins(text: str) -> tuple[int, ...]:
    """'2021,2022' -> (2021, 2022); ValueError with a readable message otherwise."""
    try:
        years = tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        raise ValueError(f"--origins: '{text}' is not a comma-separated list of years") from None
    if not years:
        raise ValueError("--origins: give at least one year")
    return years


def _la_items(names: list[str], everything: bool) -> list[LaData]:
    from .sources import sen2

    codes = [sen2.find_la(n).code for n in names]  # LookupError names the LA
    if everything:
        las = sen2.authorities()
        codes += [c for c in las.loc[las["full_series"], "area_code"] if c not in codes]
    return [la_data(c) for c in dict.fromkeys(codes)]


def _scenario_items(files: list[str]) -> list[LaData]:
    from .io import load_scenario
    from .sources import sen2

    items = []
    for f in files or [None]:
        scn = load_scenario(f).scenario
        code = ""
        for text in (scn.meta.la_name, scn.meta.name):
            try:
                code = sen2.find_la(str(text)).code if text else ""
            except LookupError:
                continue
            break
        items.append(scenario_data(scn, code))
    return items


def command(args: argparse.Namespace) -> int:
    """``sendplan backtest``: 0 done, 2 bad input (one line per problem, no output folder)."""
    from .io import ScenarioError
    from .sources import sen2

    def bad(msg: str) -> int:
        print(f"sendplan: error: {msg}", file=sys.stderr)
        return 2

    if args.scenarios and (args.la or args.all):
        return bad("give SCENARIO files or --la/--all, not both")
    for name, least in (("paths", 1), ("jobs", 0), ("seed", 0)):
        if getattr(args, name) < least:
            return bad(f"--{name} must be at least {least}")
    try:
        origins = parse_origins(args.origins)
    except ValueError as e:
        return bad(str(e))
    try:
        items = _la_items(args.la, args.all) if args.la or args.all else None
        items = items if items is not None else _scenario_items(args.scenarios)
    except LookupError as e:
        return bad(str(e).strip("'\""))
    except ScenarioError as e:
        for prob in e.problems:
            print(prob, file=sys.stderr)
        return 2
    try:
        bt = run_backtest(items, origins, args.paths, args.seed, args.jobs)
    except ScenarioError as e:
        for prob in e.problems:
            print(prob, file=sys.stderr)
        return 2
    if bt.empty:
        return bad(
            f"nothing to score: no LA has two January counts up to an origin ({args.origins}) "
            "and one after it"
        )
    out = Path(args.out)
    try:
        sc = write_outputs(bt, out, sen2.ATTRIBUTION)
    except OSError as e:
        return bad(f"{out}: {e}")
    print(terminal_text(sc))
    print(f"\n{len(bt):,} forecasts: {out / 'backtest.csv'}, backtest.html, backtest.xlsx")
    print(sen2.ATTRIBUTION)
    return 0
