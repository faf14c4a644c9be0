"""The statutory process: requests -> decision to assess -> assessment -> plan issued, by month.

Each step is a queue of open cases by age (whole months since the request) served oldest first up
to its capacity (caseworker FTE x cases per FTE a month). Plans issued in calendar year y join the
January count of y + 1 (the cohort model's joiners); annual reviews fall due on every plan once a
year, and reviews not held pile up as overdue. Terms: docs/decisions/0007-statutory-process.md.

Identities (every path, every month m, cumulative from the start):
    opening + requests = refused + withdrawn + plans issued + not issued + open decisions + open
    assessments;  assessments completed = plans issued + not issued.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import Problem, ScenarioError
from .scenario import Process, ProcessTeam, Scenario

AGES = 25  # open cases by whole months since the request: 0..23, and 24 = two years or more
WITHIN_6_WEEKS = 1  # decided in the month of the request or the next (6 weeks ~ 1.4 months)
WITHIN_20_WEEKS = 4  # issued at most four months after the request month (20 weeks ~ 4.6 months)
WITHIN_1_YEAR = 11
AGE_BANDS = {  # open cases by time since the request
    "open_under_6_weeks": (0, WITHIN_6_WEEKS),
    "open_6_to_20_weeks": (WITHIN_6_WEEKS + 1, WITHIN_20_WEEKS),
    "open_20_to_52_weeks": (WITHIN_20_WEEKS + 1, WITHIN_1_YEAR),
    "open_over_52_weeks": (WITHIN_1_YEAR + 1, AGES - 1),
}
# Monthly flows the simulation records, [P, M] each (open_* are counts at the end of the month).
FLOWS = (
    "requests",
    "decisions",
    "decisions_within_6_weeks",
    "refusals",
    "withdrawn",
    "assessments_agreed",
    "assessments_completed",
    "plans_issued",
    "plans_issued_within_20_weeks",
    "plans_not_issued",
    "open_decisions",
    "open_assessments",
    "overdue_assessments",
    *AGE_BANDS,
)
ISSUED = ("plans_issued", "plans_issued_within_20_weeks")  # the series SEN2 publishes


def _problem(source: str, path: str, msg: str) -> ScenarioError:
    return ScenarioError([Problem(source, path, msg)])


def month_index(first_year: int, month: str) -> int:
    """Months from January of ``first_year`` to ``month`` ('YYYY-MM')."""
    y, m = (int(x) for x in month.split("-"))
    return (y - first_year) * 12 + m - 1


@dataclass
class ProcessInputs:
    """The scenario's pipeline laid out by month from January of ``first_year`` (float64 [M])."""

    first_year: int
    base_year: int
    last_history_year: int  # last calendar year with published requests (fitted, in-sample)
    requests: np.ndarray  # requests received a month
    decision_capacity: np.ndarray  # decisions a month
    assessment_capacity: np.ndarray  # assessments completed a month (clearance plans included)
    clearance: np.ndarray  # the part of assessment_capacity added by backlog-clearance plans
    refusal: np.ndarray  # share of decisions refusing to assess
    withdrawn: np.ndarray  # share of decisions that are withdrawals
    issue: np.ndarray  # share of completed assessments issuing a plan
    review_capacity: np.ndarray  # reviews held a month at most
    min_age: int
    complex_extra: int
    complex_share: float
    priority_share: float
    open_decisions: float
    open_assessments: float

    @property
    def months(self) -> int:
        return self.requests.size

    @property
    def calendar_years(self) -> np.ndarray:
        """Calendar year of each month [M]."""
        return self.first_year + np.arange(self.months) // 12


GrowthPath = tuple[float, float, float]  # first-year growth, persistence, long-run growth


def requests_growth(scn: Scenario) -> tuple[GrowthPath, float]:
    """How requests grow after the last published year, and the spread of that growth across paths.

    ``process.requests_growth`` if given (constant); else as the demand section's new-plan rate:
    its typed growth, or the growth pooled across LAs with its taper (decision 0006).
    """
    from .calibrate import growth_path, growth_source

    pr, dm = scn.process, scn.demand
    if pr is not None and pr.requests_growth is not None:
        return (pr.requests_growth, 1.0, 0.0), dm.uncertainty.growth_sd
    if growth_source(scn) == "given":
        return growth_path(scn, None), dm.uncertainty.growth_sd
    from .pooling import pooled_prior

    prior = pooled_prior(scn.meta.base_year)
    return growth_path(scn, prior), prior.growth_sd


def national_growth_sd(scn: Scenario) -> float:
    """The pooled national growth shock's sd when requests follow the learned growth, else 0."""
    from .calibrate import growth_source

    pr = scn.process
    if (pr is not None and pr.requests_growth is not None) or growth_source(scn) == "given":
        return 0.0
    from .pooling import pooled_prior

    return pooled_prior(scn.meta.base_year).national_growth_sd


def growth_index(
    years_on: np.ndarray, growth: float, persistence: float, long_run: float
) -> np.ndarray:
    """Cumulative growth factor ``years_on`` years after the last published one (1 before it):
    each year's growth reverts from ``growth`` toward ``long_run`` by ``persistence`` a year."""
    k = np.maximum(np.asarray(years_on), 0).astype(int)
    j = np.arange(1, int(k.max(initial=0)) + 1)
    yearly = long_run + (growth - long_run) * persistence ** (j - 1.0)
    return np.concatenate([[1.0], np.cumprod(1.0 + yearly)])[k]


def team_capacity(
    team: ProcessTeam,
    first_year: int,
    months: int,
    last_history_year: int | None = None,
    default_growth: GrowthPath = (0.0, 1.0, 0.0),
) -> np.ndarray:
    """Cases a month [M]: the published rate in history years, else FTE (by month) x throughput.

    ``fte`` grows at ``fte_growth`` (omitted: ``default_growth``, the requests' growth path) a year
    after ``last_history_year`` (default: the team's last published year); an ``fte_by_month``
    entry replaces it from its month on.
    """
    cal = first_year + np.arange(months) // 12
    last = last_history_year
    if last is None:
        last = max(team.history_per_month) if team.history_per_month else first_year - 1
    path = default_growth if team.fte_growth is None else (team.fte_growth, 1.0, 0.0)
    fte = team.fte * growth_index(cal - last, *path)
    for month, value in sorted(team.fte_by_month.items()):
        fte[max(0, month_index(first_year, month)) :] = value
    cap = fte * team.cases_per_fte_month
    for year, per_month in team.history_per_month.items():
        cap[cal == year] = per_month
    return cap


def share_by_month(
    cal: np.ndarray, history: dict[int, float], targets: dict[int, float], default: float
) -> np.ndarray:
    """A share by month: published years as published; later years the latest target, else default."""
    out = np.full(cal.size, default, dtype=float)
    for year in sorted(targets):
        out[cal >= year] = targets[year]
    for year, v in history.items():
        out[cal == year] = v
    return out


def prepare(scn: Scenario, source: str = "scenario") -> ProcessInputs:
    """Lay ``scn.process`` out by month from January of ``first_year`` to December before the horizon.

    The last month is December of ``base_year + horizon - 1``: its plans join the horizon's January
    count. Requests after the last published year grow at ``requests_growth`` and are scaled by
    ``requests_changes`` (phased in over ``ramp_years``).
    """
    pr = scn.process
    if pr is None:
        raise ValueError("the scenario has no process section")
    base = scn.meta.base_year
    if pr.first_year > base:
        raise _problem(
            source, "process.first_year", f"{pr.first_year} is after meta.base_year {base}"
        )
    if not pr.requests_history:
        raise _problem(source, "process.requests_history", "give at least one year of requests")
    last_hist = max(pr.requests_history)
    if min(pr.requests_history) < pr.first_year:
        raise _problem(
            source,
            "process.requests_history",
            f"{min(pr.requests_history)} is before process.first_year {pr.first_year}",
        )
    end_year = base + scn.meta.horizon_years - 1
    months = (end_year - pr.first_year + 1) * 12
    cal = pr.first_year + np.arange(months) // 12
    years = np.arange(pr.first_year, end_year + 1)
    per_year = np.empty(years.size)
    known = {y: v for y, v in pr.requests_history.items()}
    last_value = known[last_hist]
    growth, _ = requests_growth(scn)
    index = growth_index(years - last_hist, *growth)
    for i, y in enumerate(years):
        if y in known:
            per_year[i] = known[y]
        elif y < last_hist:  # a gap inside the published years: the nearest earlier year
            per_year[i] = per_year[i - 1] if i else last_value
        else:
            per_year[i] = last_value * index[i]
    for ch in pr.requests_changes:
        frac = np.ones(years.size)
        if ch.ramp_years > 0:
            frac = np.clip((years - ch.from_year + 1) / ch.ramp_years, 0.0, 1.0)
        per_year *= np.where(years >= ch.from_year, 1.0 + (ch.factor - 1.0) * frac, 1.0)
    requests = per_year[cal - pr.first_year] / 12.0

    refusal = share_by_month(cal, pr.refusal_history, pr.refusal_targets, pr.refusal_share)
    withdrawn = np.full(months, pr.withdrawn_share)
    bad = np.nonzero(refusal + withdrawn > 1.0 + 1e-9)[0]
    if bad.size:
        y = int(cal[bad[0]])
        raise _problem(
            source,
            "process.refusal_share",
            f"refusal {refusal[bad[0]]:.3f} + withdrawn {pr.withdrawn_share:.3f} exceed 1 in {y}",
        )
    issue = share_by_month(cal, pr.issue_history, {}, pr.issue_share)
    clearance = np.zeros(months)
    for i, plan in enumerate(pr.backlog_clearance):
        lo, hi = (
            month_index(pr.first_year, plan.from_month),
            month_index(pr.first_year, plan.by_month),
        )
        if hi < lo:
            raise _problem(
                source,
                f"process.backlog_clearance.{i}.by_month",
                f"{plan.by_month} is before from_month {plan.from_month}",
            )
        lo_c, hi_c = max(lo, 0), min(hi, months - 1)
        if hi_c >= lo_c:  # spread evenly over the plan's months (those simulated)
            clearance[lo_c : hi_c + 1] += plan.cases / (hi - lo + 1)
    return ProcessInputs(
        first_year=pr.first_year,
        base_year=base,
        last_history_year=last_hist,
        requests=requests,
        decision_capacity=team_capacity(pr.decision, pr.first_year, months, last_hist, growth),
        assessment_capacity=team_capacity(pr.assessment, pr.first_year, months, last_hist, growth)
        + clearance,
        clearance=clearance,
        refusal=refusal,
        withdrawn=withdrawn,
        issue=issue,
        review_capacity=team_capacity(pr.reviews.team, pr.first_year, months, last_hist, growth),
        **case_rules(pr),
    )


def case_rules(pr: Process) -> dict[str, Any]:
    """The ProcessInputs a scenario's process section gives as they are, in history and forecast
    alike: how long a case takes, the complex and priority shares, the cases open at the start."""
    return {
        "min_age": pr.min_months_to_issue,
        "complex_extra": pr.complex_extra_months,
        "complex_share": pr.complex_share,
        "priority_share": pr.priority_share,
        "open_decisions": pr.open_decisions_start,
        "open_assessments": pr.open_assessments_start,
    }


def serve_oldest_first(queue: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Cases served from ``queue`` [P, K] (index = age) oldest first, up to ``capacity`` [P]."""
    older_incl = np.cumsum(queue[:, ::-1], axis=1)[:, ::-1]  # open cases this age or older
    older = older_incl - queue
    return np.clip(capacity[:, None] - older, 0.0, queue)


def _age(queue: np.ndarray) -> None:
    """Every open case one month older (in place); the last age holds two years or more."""
    queue[..., -1] += queue[..., -2]
    queue[..., 1:-1] = queue[..., :-2].copy()
    queue[..., 0] = 0.0


def simulate(
    inp: ProcessInputs,
    request_factor: np.ndarray | None = None,
    *,
    open_assessments: np.ndarray | float | None = None,
    complex_share: np.ndarray | float | None = None,
    priority_share: np.ndarray | float | None = None,
    issued_only: bool = False,
) -> dict[str, np.ndarray]:
    """Run the pipeline month by month for P paths: flows and open counts [P, M] (see FLOWS).

    Assessments are of three kinds: priority cases (served first, from ``min_age``), standard
    cases (oldest first, from ``min_age``) and complex ones (oldest first, ``complex_extra``
    months later). ``request_factor`` [P, M] multiplies requests per path (None: one
    deterministic path); ``open_assessments``, ``complex_share`` and ``priority_share`` ([P] or
    scalar) override the inputs, so a grid of values runs as paths in one call (the calibration
    does that). The opening backlog is standard cases spread evenly over ages
    ``min_age``..``min_age + 8`` (cases already waiting up to nine months more).
    ``issued_only``: only ``plans_issued`` and ``plans_issued_within_20_weeks`` (what the
    calibration compares with SEN2; the same values, without counting the other flows).
    """
    M = inp.months
    factor = np.ones((1, M)) if request_factor is None else np.asarray(request_factor, float)
    P = factor.shape[0]
    q0 = np.broadcast_to(
        np.asarray(inp.open_assessments if open_assessments is None else open_assessments, float),
        (P,),
    )
    cx = np.broadcast_to(
        np.asarray(inp.complex_share if complex_share is None else complex_share, float), (P,)
    )
    px = np.broadcast_to(
        np.asarray(inp.priority_share if priority_share is None else priority_share, float), (P,)
    )
    dq = np.zeros((P, AGES))
    dq[:, 0] = inp.open_decisions
    aq = np.zeros((P, 3, AGES))  # assessments: [standard, complex, priority] by age
    spread = np.arange(inp.min_age, inp.min_age + 9).clip(max=AGES - 1)
    np.add.at(aq, (slice(None), 0, spread), (q0 / spread.size)[:, None])
    servable = np.zeros((2, AGES), dtype=bool)
    servable[0, inp.min_age :] = True
    servable[1, min(inp.min_age + inp.complex_extra, AGES - 1) :] = True
    split = np.stack([(1.0 - px) * (1.0 - cx), (1.0 - px) * cx, px], axis=1)[:, :, None]
    out = {name: np.zeros((P, M)) for name in (ISSUED if issued_only else FLOWS)}
    band_lo = [lo for lo, _ in AGE_BANDS.values()]
    for m in range(M):
        if m:
            _age(dq)
            _age(aq)
        dq[:, 0] += inp.requests[m] * factor[:, m]
        decided = serve_oldest_first(dq, np.full(P, inp.decision_capacity[m]))
        dq -= decided
        agreed = decided * (1.0 - inp.refusal[m] - inp.withdrawn[m])
        aq += split * agreed[:, None, :]
        cap = np.full(P, inp.assessment_capacity[m])
        urgent = aq[:, 2] * servable[0]
        done_urgent = serve_oldest_first(urgent, cap)
        aq[:, 2] -= done_urgent
        ready = aq[:, :2] * servable
        ready_by_age = ready.sum(axis=1)
        done_by_age = serve_oldest_first(ready_by_age, cap - done_urgent.sum(axis=1))
        share_done = np.divide(
            done_by_age, ready_by_age, out=np.zeros_like(done_by_age), where=ready_by_age > 0
        )
        aq[:, :2] -= ready * share_done[:, None, :]
        done_by_age += done_urgent
        n_done = done_by_age.sum(axis=1)
        out["plans_issued"][:, m] = n_done * inp.issue[m]
        out["plans_issued_within_20_weeks"][:, m] = (
            done_by_age[:, : WITHIN_20_WEEKS + 1].sum(axis=1) * inp.issue[m]
        )
        if issued_only:
            continue
        n_decided = decided.sum(axis=1)
        out["requests"][:, m] = inp.requests[m] * factor[:, m]
        out["decisions"][:, m] = n_decided
        out["decisions_within_6_weeks"][:, m] = decided[:, : WITHIN_6_WEEKS + 1].sum(axis=1)
        out["refusals"][:, m] = n_decided * inp.refusal[m]
        out["withdrawn"][:, m] = n_decided * inp.withdrawn[m]
        out["assessments_agreed"][:, m] = agreed.sum(axis=1)
        out["assessments_completed"][:, m] = n_done
        out["plans_not_issued"][:, m] = n_done * (1.0 - inp.issue[m])
        open_by_age = dq + aq.sum(axis=1)
        out["open_decisions"][:, m] = dq.sum(axis=1)
        out["open_assessments"][:, m] = aq.sum(axis=(1, 2))
        out["overdue_assessments"][:, m] = aq[:, :, WITHIN_20_WEEKS + 1 :].sum(axis=(1, 2))
        bands = np.add.reduceat(open_by_age, band_lo, axis=1)
        for i, name in enumerate(AGE_BANDS):
            out[name][:, m] = bands[:, i]
    return out


def reviews(
    inp: ProcessInputs, pr: Process, issued: np.ndarray, stock_start: float
) -> dict[str, np.ndarray]:
    """Annual reviews [P, M] from January of the base year (earlier months are zero).

    The stock is the pipeline's running estimate: January base-year plans, plus plans issued, less
    ``reviews.ceased_share`` a year. A plan falls due a year after it was counted: reviews due in a
    month are one twelfth of the stock twelve months earlier (the base year's first twelve months
    use the January stock). Reviews held are at most the capacity; the rest stay overdue.
    """
    P, M = issued.shape
    b = (inp.base_year - inp.first_year) * 12
    stock = np.zeros((P, M + 1))
    due = np.zeros((P, M))
    held = np.zeros((P, M))
    overdue = np.zeros((P, M))
    stock[:, b] = stock_start
    open_overdue = np.full(P, pr.reviews.overdue_start)
    keep = 1.0 - pr.reviews.ceased_share / 12.0
    for m in range(b, M):
        stock[:, m + 1] = stock[:, m] * keep + issued[:, m]
        due[:, m] = stock[:, max(m - 12, b)] / 12.0
        held[:, m] = np.minimum(inp.review_capacity[m], due[:, m] + open_overdue)
        open_overdue = open_overdue + due[:, m] - held[:, m]
        overdue[:, m] = open_overdue
    rv = pr.reviews
    return {
        "plans_estimate": stock[:, :M],
        "reviews_due": due,
        "reviews_held": held,
        "reviews_overdue": overdue,
        "reviews_cease": held * rv.outcome_cease,
        "reviews_amend": held * rv.outcome_amend,
        "reviews_maintain": held * rv.outcome_maintain,
    }


def cessation_multiplier(
    inp: ProcessInputs, pr: Process, rv: dict[str, np.ndarray], years: list[int]
) -> np.ndarray:
    """Multiplier [T] on cessation into each January ``years[t]`` from the reviews held before it.

    The cohort model's cessation rates are calibrated with the base year's share of due reviews
    held; a review that ends a plan (``outcome_cease``) can only happen if the review is held, so
    a year holding a larger (smaller) share ceases more (fewer) plans:
    1 + outcome_cease x (held share - base held share) x reviews due / (ceased_share x stock).
    """
    cal = inp.calendar_years
    out = np.ones(len(years))
    due, held, stock = (rv[k][0] for k in ("reviews_due", "reviews_held", "plans_estimate"))
    ref_mask = cal == inp.base_year
    ref = held[ref_mask].sum() / max(due[ref_mask].sum(), 1e-9)
    for t, y in enumerate(years):
        mask = cal == y - 1
        if t == 0 or not mask.any() or y - 1 < inp.base_year:
            continue
        d, h = due[mask].sum(), held[mask].sum()
        expected = pr.reviews.ceased_share * stock[mask][0]
        if d > 0 and expected > 0:
            out[t] = max(0.0, 1.0 + pr.reviews.outcome_cease * (h / d - ref) * d / expected)
    return out


def request_factors(scn: Scenario, inp: ProcessInputs, paths: int, seed: int) -> np.ndarray:
    """Per-path multipliers on requests [P, M]: the demand section's incidence and growth spread.

    Each path draws a level (lognormal, ``demand.uncertainty.incidence_cv``) and a growth shock
    (the spread of ``requests_growth``) compounding from the first unpublished year, and, with the
    learned growth, the national shock of each unpublished year (``pooling.national_factors``, the
    same draws as the demand stage's); published years are as published.
    """
    unc = scn.demand.uncertainty
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(13,)))
    z = rng.standard_normal((2, paths))
    s2 = np.log1p(unc.incidence_cv**2)
    level = np.exp(np.sqrt(s2) * z[0] - s2 / 2.0)
    (g, _, _), sd = requests_growth(scn)
    shock = np.maximum(1.0 + g + sd * z[1], 0.01) / (1.0 + g)
    k = np.maximum(inp.calendar_years - inp.last_history_year, 0)  # years past the published
    factor = level[:, None] * shock[:, None] ** k[None, :]
    nat_sd = national_growth_sd(scn)
    if nat_sd > 0:
        from .pooling import national_factors

        factor = factor * national_factors(nat_sd, paths, int(k.max()) + 1, seed)[:, k]
    return np.where(k[None, :] > 0, factor, 1.0)


# --------------------------------------------------------------------------- results


@dataclass
class ProcessResult:
    """Pipeline output: deterministic flows [1, M], per-path flows [P, M], joiners by January."""

    inputs: ProcessInputs
    det: dict[str, np.ndarray]
    paths: dict[str, np.ndarray]
    years: list[int]  # January census years of the demand stage
    joiners: np.ndarray  # [T] deterministic plans issued into each January (index 0: 0)
    joiners_paths: np.ndarray  # [P, T]
    cessation_multiplier: np.ndarray  # [T]
    fit: dict[str, Any]
    _tables: dict[str, pd.DataFrame] | None = field(default=None, init=False, repr=False)

    def month_labels(self) -> list[str]:
        m = np.arange(self.inputs.months)
        return [f"{self.inputs.first_year + i // 12}-{i % 12 + 1:02d}" for i in m]

    def tables(self) -> dict[str, pd.DataFrame]:
        """``process``: one row per month, then one per financial year (April to March).

        Flows are the deterministic pipeline (they add up); open counts are at the end of the
        period. Where paths > 1, ``*_p10``/``*_p50``/``*_p90`` give the spread of plans issued,
        the 20-week share, open assessments and overdue reviews over Monte Carlo paths. Built once
        (a run reads them three times, and the app's levers re-use this stage); each call gets
        its own copies.
        """
        if self._tables is None:
            self._tables = self._build_tables()
        return {k: v.copy() for k, v in self._tables.items()}

    def _build_tables(self) -> dict[str, pd.DataFrame]:
        inp = self.inputs
        cal = inp.calendar_years
        M = inp.months
        det = {k: v[0] for k, v in self.det.items() if k != "plans_estimate"}
        stocks = {k for k in det if k.startswith(("open_", "overdue_", "reviews_overdue"))}
        month_no = np.arange(M) % 12 + 1
        fy = np.where(month_no >= 4, cal, cal - 1)
        frames = []
        monthly = pd.DataFrame(
            {
                "period": "month",
                "month": self.month_labels(),
                "year": cal,
                "financial_year": fy,
                "basis": np.where(cal <= inp.last_history_year, "fitted (in-sample)", "projected"),
            }
        )
        for k, v in det.items():
            monthly[k] = v
        monthly["assessment_capacity"] = inp.assessment_capacity
        monthly["clearance_capacity"] = inp.clearance
        frames.append(monthly)
        # financial years with all twelve months simulated
        fys = [y for y in np.unique(fy) if (fy == y).sum() == 12]
        rows = []
        for y in fys:
            mask = fy == y
            last = np.nonzero(mask)[0][-1]
            row: dict[str, Any] = {
                "period": "financial_year",
                "month": f"{y}-{(y + 1) % 100:02d}",
                "year": y,
                "financial_year": y,
                "basis": "fitted (in-sample)" if y + 1 <= inp.last_history_year else "projected",
            }
            for k, v in det.items():
                row[k] = v[last] if k in stocks else v[mask].sum()
            row["assessment_capacity"] = inp.assessment_capacity[mask].sum()
            row["clearance_capacity"] = inp.clearance[mask].sum()
            rows.append(row)
        frames.append(pd.DataFrame(rows))
        df = pd.concat(frames, ignore_index=True)
        df["share_within_20_weeks"] = np.divide(
            df["plans_issued_within_20_weeks"].to_numpy(float),
            df["plans_issued"].to_numpy(float),
            out=np.full(len(df), np.nan),
            where=df["plans_issued"].to_numpy(float) > 0,
        )
        df["plans_issued_over_20_weeks"] = df["plans_issued"] - df["plans_issued_within_20_weeks"]
        df["share_decided_within_6_weeks"] = np.divide(
            df["decisions_within_6_weeks"].to_numpy(float),
            df["decisions"].to_numpy(float),
            out=np.full(len(df), np.nan),
            where=df["decisions"].to_numpy(float) > 0,
        )
        if self.paths["plans_issued"].shape[0] > 1:
            for name, arr in self._path_columns(fy, fys).items():
                df[name] = arr
        return {"process": df}

    def _path_columns(self, fy: np.ndarray, fys: list[int]) -> dict[str, np.ndarray]:
        """P10/P50/P90 over paths of four headline series, monthly rows then financial years."""
        p = self.paths
        out: dict[str, np.ndarray] = {}

        def rows_of(flow: np.ndarray, stock: bool) -> np.ndarray:
            yearly = [
                flow[:, np.nonzero(fy == y)[0][-1]] if stock else flow[:, fy == y].sum(axis=1)
                for y in fys
            ]
            return np.concatenate([flow, np.stack(yearly, axis=1)], axis=1)

        issued = rows_of(p["plans_issued"], False)
        within = rows_of(p["plans_issued_within_20_weeks"], False)
        series = {
            "plans_issued": issued,
            "share_within_20_weeks": np.divide(
                within, issued, out=np.full(issued.shape, np.nan), where=issued > 0
            ),
            "open_assessments": rows_of(p["open_assessments"], True),
            "reviews_overdue": rows_of(p["reviews_overdue"], True),
        }
        for name, arr in series.items():
            q = _nanquantile_columns(arr, [0.1, 0.5, 0.9])
            for tag, v in zip(("p10", "p50", "p90"), q, strict=True):
                out[f"{name}_{tag}"] = v
        return out

    def by_financial_year(self, column: str) -> dict[int, float]:
        """A deterministic flow summed by financial year (complete years only)."""
        df = self.tables()["process"]
        fy = df[df["period"] == "financial_year"]
        return {int(y): float(v) for y, v in zip(fy["year"], fy[column], strict=True)}

    def headline(self) -> dict[str, Any]:
        """KPIs for summary.json by financial year, with P10/P50/P90 where paths > 1."""
        df = self.tables()["process"]
        fy = df[df["period"] == "financial_year"].set_index("year")
        fy = fy[fy.index >= self.inputs.base_year]

        def col(name: str, nd: int = 1) -> dict[str, float]:
            return {str(y): round(float(v), nd) for y, v in fy[name].items() if np.isfinite(v)}

        out: dict[str, Any] = {
            "basis": "financial years (April to March); flows deterministic",
            "requests": col("requests"),
            "plans_issued": col("plans_issued"),
            "share_within_20_weeks": col("share_within_20_weeks", 3),
            "share_decided_within_6_weeks": col("share_decided_within_6_weeks", 3),
            "open_assessments_end": col("open_assessments"),
            "overdue_assessments_end": col("overdue_assessments"),
            "plans_issued_over_20_weeks": col("plans_issued_over_20_weeks"),
            "reviews_overdue_end": col("reviews_overdue"),
            "tribunal_appeals": col("tribunal_appeals"),
            "tribunal_placement_moves": col("tribunal_placement_moves"),
            "joiners_by_january": {
                str(y): round(float(v), 1)
                for y, v in zip(self.years[1:], self.joiners[1:], strict=True)
            },
            "cessation_multiplier": {
                str(y): round(float(v), 4)
                for y, v in zip(self.years[1:], self.cessation_multiplier[1:], strict=True)
            },
            "fit": self.fit,
        }
        if "plans_issued_p50" in fy:
            for name in ("plans_issued", "share_within_20_weeks", "reviews_overdue"):
                for tag in ("p10", "p50", "p90"):
                    out[f"{name}_{tag}"] = col(f"{name}_{tag}", 3)
        return out


def fit_report(inp: ProcessInputs, pr: Process, det: dict[str, np.ndarray]) -> dict[str, Any]:
    """Model against the published series it was fitted to, by calendar year: in-sample figures."""
    cal = inp.calendar_years
    rows = []
    for y in sorted(set(pr.issued_history) | set(pr.within_20_weeks_history)):
        mask = cal == y
        if not mask.any():
            continue
        issued = float(det["plans_issued"][0, mask].sum())
        within = float(det["plans_issued_within_20_weeks"][0, mask].sum())
        rows.append(
            {
                "year": int(y),
                "plans_issued_model": round(issued, 1),
                "plans_issued_published": pr.issued_history.get(y),
                "share_within_20_weeks_model": round(within / issued, 4) if issued > 0 else None,
                "share_within_20_weeks_published": pr.within_20_weeks_history.get(y),
            }
        )
    return {
        "label": "fitted (in-sample): these are the figures the pipeline was fitted to",
        "years": rows,
    }


def stock_start(scn: Scenario) -> float:
    """January base-year plans for the review schedule: the history count, else the latest before."""
    hist = scn.demand.history
    earlier = [y for y in hist if y <= scn.meta.base_year]
    return float(hist[max(earlier)]) if earlier else 0.0


def pipeline_for(scn: Scenario, paths: int, seed: int, source: str) -> ProcessResult | None:
    """The statutory pipeline of a scenario with a ``process`` section (None without one)."""
    if scn.process is None:
        return None
    return run_process(scn, scn.years, paths, seed, stock_start(scn), source)


def run_process(
    scn: Scenario, years: list[int], paths: int, seed: int, stock_start: float, source: str
) -> ProcessResult:
    """The statutory pipeline for ``scn``: deterministic and ``paths`` Monte Carlo paths.

    ``years`` are the demand stage's January census years (base year first); joiners into January
    ``y`` are the plans issued in calendar year ``y - 1``.
    """
    pr = scn.process
    assert pr is not None
    inp = prepare(scn, source)
    det = simulate(inp)
    per_path = simulate(inp, request_factors(scn, inp, paths, seed)) if paths > 1 else det
    for flows in (det, per_path):
        flows.update(reviews(inp, pr, flows["plans_issued"], stock_start))
        tb = pr.tribunals
        flows["tribunal_appeals"] = (
            flows["refusals"] * tb.appeal_share_refusals
            + flows["plans_issued"] * tb.appeal_share_plans
        )
        flows["tribunal_placement_moves"] = (
            flows["plans_issued"] * tb.appeal_share_plans * tb.placement_move_share
        )
    cal = inp.calendar_years

    def joiners_of(flows: dict[str, np.ndarray]) -> np.ndarray:
        issued = flows["plans_issued"]
        out = np.zeros((issued.shape[0], len(years)))
        for t, y in enumerate(years[1:], start=1):
            out[:, t] = issued[:, cal == y - 1].sum(axis=1)
        return out

    return ProcessResult(
        inputs=inp,
        det=det,
        paths=per_path,
        years=list(years),
        joiners=joiners_of(det)[0],
        joiners_paths=joiners_of(per_path),
        cessation_multiplier=cessation_multiplier(inp, pr, det, years),
        fit=fit_report(inp, pr, det),
    )


def _nanquantile_columns(arr: np.ndarray, probs: list[float]) -> np.ndarray:
    """``np.nanquantile(arr, probs, axis=0)``, the same values: columns with no NaN in one
    vectorised call, only the others one by one (numpy's nanquantile goes column by column)."""
    out = np.full((len(probs), arr.shape[1]), np.nan)
    gap = np.isnan(arr).any(axis=0)
    if (~gap).any():
        out[:, ~gap] = np.quantile(arr[:, ~gap], probs, axis=0)
    some = gap & ~np.isnan(arr).all(axis=0)  # a column of NaN only stays NaN
    if some.any():
        out[:, some] = np.nanquantile(arr[:, some], probs, axis=0)
    return out
