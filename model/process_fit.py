"""Calibrate the statutory pipeline for any LA from the published SEN2 series (2019-2024).

Published rates go in as published: requests received, the refusal and issue shares, decisions and
assessments completed a month (the teams' capacity in those years). Two values are fitted, by a
grid searched in one vectorised run: the backlog of assessments open at the start and the share of
complex assessments (late even without a queue), so that the model reproduces the plans issued
each year and their 20-week share. Those figures are therefore in-sample, and labelled so.

How ``sendplan init`` uses it (one call per LA, about 0.15 s)::

    out = process_inputs_for_la(code)          # GSS code, LA number or name
    scenario["process"] = out["process"]       # the scenario's process section
    provenance_rows += out["provenance"]       # key, kind (source/derived/assumption), source, note
    scenario["demand"].pop("backlog", None)    # the pipeline issues the backlog's plans

The review schedule starts from ``demand.history[base_year]`` (the January count), so the
scenario should carry it; ``out["fit"]`` (labelled "fitted (in-sample)") can go in a comment.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from .process import ProcessInputs, case_rules, share_by_month, simulate, team_capacity
from .scenario import Process
from .sources import sen2

SOURCE = f"DfE SEN2 ({sen2.RELEASE}), Education, health and care plans"
# Assumed throughputs: they turn published cases a month into caseworker FTE and back; a scenario
# with the LA's own staffing replaces both.
CASES_PER_FTE = {"decision": 20.0, "assessment": 4.0, "reviews": 25.0}
# Share of plan appeals assumed to move the placement to a more expensive setting.
PLACEMENT_MOVE_SHARE = 0.4
GRID_BACKLOG_MONTHS = np.arange(0.0, 24.01, 2.0)  # opening backlog in months of capacity
GRID_COMPLEX = np.arange(0.0, 0.91, 0.1)
GRID_PRIORITY = np.array([0.0, 0.03, 0.1, 0.2, 0.3])
SHARE_WEIGHT = 1.0  # a 20-week share point counts as much as 1% of plans issued


@lru_cache(maxsize=1)
def _panel_by_area() -> dict[str, pd.DataFrame]:
    """The shipped SEN2 panel's published rows split by area once (init asks for every LA)."""
    p = sen2.panel()
    p = p[p["status"] == "published"]
    return {str(code): rows for code, rows in p.groupby("area_code", sort=False)}


def _table(code: str, measure: str) -> pd.DataFrame:
    """Published values of a measure by year (rows) and breakdown (columns), as ``sen2.table``
    (a copy: England's tables are kept for every LA's fit)."""
    if code == sen2.ENGLAND_CODE:
        return _england_table(measure).copy()
    return _pivot(code, measure)


def _pivot(code: str, measure: str) -> pd.DataFrame:
    rows = _panel_by_area().get(code)
    if rows is None:
        return pd.DataFrame()
    rows = rows[rows["measure"] == measure]
    # the first published value of each (year, breakdown), as pivot_table's "first" (faster)
    return rows.groupby(["year", "breakdown"])["value"].first().unstack("breakdown").sort_index()


@lru_cache(maxsize=8)
def _england_table(measure: str) -> pd.DataFrame:
    return _pivot(sen2.ENGLAND_CODE, measure)


def _series(code: str, measure: str) -> pd.Series:
    t = _table(code, measure)
    return t["all"].astype(float) if "all" in t.columns else pd.Series(dtype=float)


def _val(table: Any, year: int, col: str) -> float | None:
    if col not in table.columns or year not in table.index:
        return None
    v = table.loc[year, col]
    return None if v is None or not np.isfinite(v) else float(v)


def fit_grid(
    inp: ProcessInputs,
    issued: dict[int, float],
    within: dict[int, float],
    backlog_months: np.ndarray = GRID_BACKLOG_MONTHS,
    complex_share: np.ndarray = GRID_COMPLEX,
    priority_share: np.ndarray = GRID_PRIORITY,
) -> tuple[float, float, float, float]:
    """(open assessments at the start, complex share, priority share, rms error) at the best fit.

    Every grid point is a path of one ``simulate`` call. Error per published year: the relative
    error of plans issued, and SHARE_WEIGHT x the error of the 20-week share (shares are fractions).
    """
    first_cap = float(inp.assessment_capacity[:12].mean())
    err, q0, cx, px = _grid_errors(
        inp, issued, within, backlog_months * first_cap, complex_share, priority_share
    )
    best = int(np.argmin(err))
    # a finer grid around the best point of the coarse one
    err, q0, cx, px = _grid_errors(
        inp,
        issued,
        within,
        np.clip(q0[best] + first_cap * np.arange(-1.5, 1.51, 0.25), 0.0, None),
        np.clip(cx[best] + np.arange(-0.1, 0.101, 0.025), 0.0, 0.95),
        np.unique(np.clip(px[best] * np.array([0.6, 0.8, 1.0, 1.25, 1.5]), 0.0, 0.5)),
    )
    best = int(np.argmin(err))
    n = sum(1 for y in issued if issued.get(y)) + len(within)
    rms = float(np.sqrt(err[best] / max(n, 1)))
    return float(q0[best]), float(cx[best]), float(px[best]), rms


def _grid_errors(
    inp: ProcessInputs,
    issued: dict[int, float],
    within: dict[int, float],
    opening: np.ndarray,
    complex_share: np.ndarray,
    priority_share: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit error of every grid point (one path each) and the grid's values, flattened."""
    q0, cx, px = (
        a.ravel() for a in np.meshgrid(opening, complex_share, priority_share, indexing="ij")
    )
    flows = simulate(
        inp,
        np.ones((q0.size, inp.months)),
        open_assessments=q0,
        complex_share=cx,
        priority_share=px,
        issued_only=True,
    )
    cal = inp.calendar_years
    err = np.zeros(q0.size)
    n = 0
    for y in sorted(set(issued) | set(within)):
        mask = cal == y
        if not mask.any():
            continue
        got = flows["plans_issued"][:, mask].sum(axis=1)
        if issued.get(y):
            err += ((got - issued[y]) / issued[y]) ** 2
            n += 1
        if y in within:
            ok = flows["plans_issued_within_20_weeks"][:, mask].sum(axis=1)
            share = np.divide(ok, got, out=np.zeros_like(ok), where=got > 0)
            err += (SHARE_WEIGHT * (share - within[y])) ** 2
            n += 1
    return err, q0, cx, px


def process_inputs_for_la(code: str) -> dict[str, Any]:
    """The ``process`` section for an LA (GSS code, LA number or name) and its provenance rows.

    Returns {"process": mapping for the scenario, "provenance": [{key, kind, source, note}],
    "fit": {...}}. Years with a published value use it; a share missing for an LA falls back to
    England's (kind "derived", said in the note). Raises LookupError for an unknown LA or one with
    no published requests.
    """
    area = sen2.find_la(code)
    req = _table(area.code, "requests")
    ass = _table(area.code, "assessments")
    tim = _table(area.code, "timeliness")
    rev = _table(area.code, "annual_reviews")
    eng = {m: _table(sen2.ENGLAND_CODE, m) for m in ("requests", "assessments", "annual_reviews")}
    prov: list[dict[str, str]] = []

    def note(key: str, kind: str, text: str, source: str = SOURCE) -> None:
        prov.append({"key": f"process.{key}", "kind": kind, "source": source, "note": text})

    received = {int(y): float(v) for y, v in req.get("received", {}).items() if np.isfinite(v)}
    if not received:
        raise LookupError(f"{area.name}: SEN2 publishes no requests for assessment")
    years = sorted(received)
    first, last = years[0], years[-1]
    note("first_year", "source", "first calendar year of the published requests series")
    note(
        "requests_history.*", "source", "requests for EHC needs assessment received (calendar year)"
    )

    def yearly_share(table: Any, num: str, den: list[str]) -> dict[int, float]:
        out = {}
        for y in table.index:
            a = _val(table, int(y), num)
            d = [_val(table, int(y), c) for c in den]
            if a is not None and all(x is not None for x in d) and sum(d) > 0:  # type: ignore[arg-type]
                out[int(y)] = round(a / sum(d), 4)  # type: ignore[arg-type]
        return out

    def latest(own: dict[int, float], england: dict[int, float], key: str, what: str) -> float:
        # the mean of the last three published years: one year's share can be a backlog's echo
        src = own or england
        years = sorted(src)[-3:]
        value = round(float(np.mean([src[y] for y in years])), 4)
        span = f"{years[0]}-{years[-1]}" if len(years) > 1 else f"{years[0]}"
        if own:
            note(key, "derived", f"{what}, mean of {span}")
        else:
            note(key, "derived", f"{what}: not published for this LA; England's, mean of {span}")
        return value

    ref_cols = ["decided_to_assess", "decided_not_to_assess"]
    refusal_hist = yearly_share(req, "decided_not_to_assess", ref_cols)
    for y, v in yearly_share(req, "decided_not_to_assess", ["received"]).items():
        refusal_hist.setdefault(y, v)  # years without decisions to assess: refused / received
    refusal_hist = dict(sorted(refusal_hist.items()))
    refusal_eng = yearly_share(eng["requests"], "decided_not_to_assess", ref_cols)
    refusal = latest(refusal_hist, refusal_eng, "refusal_share", "refused / decided")
    note(
        "refusal_history.*",
        "source",
        "decided not to assess / (decided to + not to assess); / requests received where "
        "decisions to assess are not published",
    )
    wd_cols = ["received"]
    withdrawn_hist = yearly_share(req, "withdrawn", wd_cols)
    withdrawn = latest(
        withdrawn_hist,
        yearly_share(eng["requests"], "withdrawn", wd_cols),
        "withdrawn_share",
        "requests withdrawn / received",
    )
    iss_cols = ["plan_issued", "plan_not_issued"]
    issue_hist = yearly_share(ass, "plan_issued", iss_cols)
    issue = latest(
        issue_hist,
        yearly_share(eng["assessments"], "plan_issued", iss_cols),
        "issue_share",
        "plans issued / assessments completed",
    )
    note("issue_history.*", "source", "plans issued / (issued + not issued) after assessment")

    decisions: dict[int, float] = {}
    for y in years:
        parts = [_val(req, y, c) for c in ref_cols]
        wd = _val(req, y, "withdrawn") or 0.0
        if all(p is not None for p in parts):
            decisions[y] = round((sum(parts) + wd) / 12.0, 2)  # type: ignore[arg-type]
        else:  # not published: decisions assumed to keep pace with requests that year
            decisions[y] = round(received[y] / 12.0, 2)
    note(
        "decision.history_per_month.*",
        "derived",
        "(decided to + not to assess + withdrawn) / 12; requests / 12 where not published",
    )
    completed: dict[int, float] = {}
    for y in years:
        a, b = _val(ass, y, "plan_issued"), _val(ass, y, "plan_not_issued")
        if a is not None and b is not None:
            completed[y] = round((a + b) / 12.0, 2)
    note("assessment.history_per_month.*", "derived", "(plans issued + not issued) / 12")
    issued_hist = {y: v for y in years if (v := _val(ass, y, "plan_issued")) is not None}
    note("issued_history.*", "source", "plans issued after assessment (calendar year)")
    within_hist = {}
    for y in years:
        w, n = _val(tim, y, "within_20_weeks"), _val(tim, y, "issued")
        if w is not None and n:
            within_hist[y] = round(w / n, 4)
    note("within_20_weeks_history.*", "source", "plans issued within 20 weeks / plans issued")

    def team(kind: str, per_month: float, history: dict[int, float]) -> dict[str, Any]:
        tp = CASES_PER_FTE[kind]
        note(
            f"{'reviews.team' if kind == 'reviews' else kind}.cases_per_fte_month",
            "assumption",
            f"about {tp:g} cases per caseworker FTE a month; replace with the LA's own staffing",
        )
        note(
            f"{'reviews.team' if kind == 'reviews' else kind}.fte",
            "derived",
            f"the {last} published rate / throughput: the same capacity continues",
        )
        return {
            "fte": round(per_month / tp, 2),
            "cases_per_fte_month": tp,
            "history_per_month": history,
        }

    # decisions keep pace with requests from the last published year (none left undecided)
    dec_team = team("decision", max(decisions[last], received[last] / 12.0), decisions)
    last_completed = completed.get(last, issued_hist.get(last, 0.0) / 12.0)
    ass_team = team("assessment", last_completed, completed)

    rv_year = max(rev.index) if len(rev.index) else None
    due = _val(rev, int(rv_year), "due") if rv_year is not None else None
    held = _val(rev, int(rv_year), "held") if rv_year is not None else None
    outcomes = {
        k: _val(rev, int(rv_year), f"outcome_{k}") if rv_year is not None else None
        for k in ("cease", "amend", "maintain")
    }
    if held and all(v is not None for v in outcomes.values()) and sum(outcomes.values()) > 0:  # type: ignore[arg-type]
        tot = sum(outcomes.values())  # type: ignore[arg-type]
        shares = {k: round(v / tot, 4) for k, v in outcomes.items()}  # type: ignore[operator]
        note(
            "reviews.outcome_*",
            "source",
            f"annual review outcomes {rv_year} / reviews with an outcome",
        )
    else:
        e = eng["annual_reviews"]
        ey = int(max(e.index))
        tot = sum(_val(e, ey, f"outcome_{k}") or 0.0 for k in outcomes)
        shares = {k: round((_val(e, ey, f"outcome_{k}") or 0.0) / tot, 4) for k in outcomes}
        note("reviews.outcome_*", "derived", f"England's annual review outcomes {ey}")
    review_history = {int(rv_year): round(held / 12.0, 2)} if held and rv_year is not None else {}
    note("reviews.team.history_per_month.*", "source", "annual reviews held in the year / 12")
    reviews_team = team(
        "reviews", review_history.get(int(rv_year or 0), 0.0) or (due or 0.0) / 12.0, review_history
    )
    overdue = max(0.0, (due or 0.0) - (held or 0.0))
    note("reviews.overdue_start", "derived", "reviews due but not held in the published year")
    plans = _series(area.code, "plans")
    ceased = _series(area.code, "ceased_plans")
    ceased_share = 0.08
    common = [y for y in ceased.index if y in plans.index and plans[y] > 0]
    if common:
        ceased_share = round(float(ceased[max(common)] / plans[max(common)]), 4)
        note(
            "reviews.ceased_share",
            "derived",
            f"plans ceased in {max(common)} / January {max(common)} plans",
        )
    else:
        note("reviews.ceased_share", "assumption", "about 8% of plans cease a year (England, 2024)")

    def tribunal_share(table: Any, num: str, den: str) -> float:
        # appeals can follow decisions of an earlier year: a share above 1 (a few refusals) is 1
        shares = yearly_share(table, num, [den])
        return min(1.0, shares[max(shares)]) if shares else 0.0

    tribunals = {
        "appeal_share_refusals": tribunal_share(req, "tribunal", "decided_not_to_assess"),
        "appeal_share_plans": tribunal_share(ass, "tribunal", "plan_issued"),
        "placement_move_share": PLACEMENT_MOVE_SHARE,
    }
    note(
        "tribunals.appeal_share_*",
        "derived",
        "tribunal appeals / refusals (requests) or plans issued (assessments)",
    )
    note(
        "tribunals.placement_move_share",
        "assumption",
        "share of plan appeals that move the placement to a more expensive setting",
    )

    section: dict[str, Any] = {
        "first_year": first,
        "requests_history": received,
        "refusal_share": refusal,
        "refusal_history": refusal_hist,
        "withdrawn_share": withdrawn,
        "issue_share": issue,
        "issue_history": issue_hist,
        "min_months_to_issue": 3,
        "complex_extra_months": 3,
        "decision": dec_team,
        "assessment": ass_team,
        "reviews": {
            "team": reviews_team,
            "overdue_start": round(overdue, 1),
            "outcome_cease": shares["cease"],
            "outcome_amend": shares["amend"],
            "outcome_maintain": shares["maintain"],
            "ceased_share": ceased_share,
        },
        "tribunals": tribunals,
        "issued_history": issued_hist,
        "within_20_weeks_history": within_hist,
    }
    note(
        "min_months_to_issue",
        "assumption",
        "6-week decision plus the statutory assessment steps: no plan in under 3 months",
    )
    note(
        "complex_extra_months",
        "assumption",
        "complex assessments wait about 3 months longer for advice",
    )
    fit = fit_section(section, last)
    section["open_assessments_start"] = round(fit["open_assessments_start"], 1)
    section["complex_share"] = round(fit["complex_share"], 3)
    section["priority_share"] = round(fit["priority_share"], 3)
    note("priority_share", "derived", "fitted (in-sample) to plans issued and 20-week shares")
    note(
        "open_assessments_start", "derived", "fitted (in-sample) to plans issued and 20-week shares"
    )
    note("complex_share", "derived", "fitted (in-sample) to plans issued and 20-week shares")
    return {"process": section, "provenance": prov, "fit": fit}


def fit_section(section: dict[str, Any], last_year: int) -> dict[str, Any]:
    """Fit the opening backlog and complex share of a ``process`` mapping to its history targets."""
    pr = Process.model_validate(section)
    inp = history_inputs(pr, last_year)
    q0, cx, px, rms = fit_grid(inp, pr.issued_history, pr.within_20_weeks_history)
    return {
        "open_assessments_start": q0,
        "complex_share": cx,
        "priority_share": px,
        "rms_error": round(rms, 4),
        "label": "fitted (in-sample)",
    }


def history_inputs(pr: Process, last_year: int) -> ProcessInputs:
    """The published years only, laid out by month (capacities and shares as published)."""
    months = (last_year - pr.first_year + 1) * 12
    cal = pr.first_year + np.arange(months) // 12
    req = np.array([pr.requests_history.get(int(y), 0.0) for y in cal]) / 12.0
    return ProcessInputs(
        first_year=pr.first_year,
        base_year=last_year,
        last_history_year=last_year,
        requests=req,
        decision_capacity=team_capacity(pr.decision, pr.first_year, months),
        assessment_capacity=team_capacity(pr.assessment, pr.first_year, months),
        clearance=np.zeros(months),
        refusal=share_by_month(cal, pr.refusal_history, {}, pr.refusal_share),
        withdrawn=np.full(months, pr.withdrawn_share),
        issue=share_by_month(cal, pr.issue_history, {}, pr.issue_share),
        review_capacity=np.zeros(months),
        **case_rules(pr),
    )


__all__ = ["process_inputs_for_la", "fit_grid", "fit_section"]
