"""The app's levers as edits of a resolved scenario mapping, so the app and the CLI run the same YAML.

A lever never changes the engine: it rewrites a key of the scenario (``demand.growth``, an extra
``capacity.pipeline`` item, ``capacity.delays``, ...). ``apply_levers`` writes only the levers that
differ from the base scenario, so an untouched app runs exactly the base mapping (same sha256 as the
CLI). ``demand_key`` fingerprints the sections the demand stage reads, to cache that stage.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .io import dump_yaml
from .scenario import Scenario

# Sections the demand stage reads (meta: years; run: paths and seed): its cache key.
DEMAND_SECTIONS = ("meta", "geography", "population", "demand", "run", "process")
# Pipeline items the app adds carry this source, so they are recognisable in the YAML.
APP_SOURCE = "sendplan app lever"
RESOURCE_BASE = "resource_base"
SPECIAL = "special"


@dataclass(frozen=True)
class ExtraPlaces:
    """Extra committed places in one locality opening in one year (a new pipeline item)."""

    locality: str
    open_year: int
    places: float
    setting: str = RESOURCE_BASE


@dataclass
class Levers:
    """Every lever the app offers, in the scenario's own units (shares, GBP at price-base prices)."""

    growth: float  # demand.growth, share per year
    requests_per_1000: float  # demand.requests_per_1000
    backlog: dict[int, float]  # demand.backlog: year -> extra plans
    extra_places: list[ExtraPlaces]  # appended to capacity.pipeline
    delays: dict[str, int]  # capacity.delays: project name -> extra years
    max_independent_share: float | None  # policy.max_independent_share (None = no cap)
    plan_for: float  # policy.plan_for: demand quantile the build plan must serve
    mip_gap: float  # policy.mip_gap: how far above the best bound a whole-unit plan may cost
    unit_cost_gbp: dict[str, float]  # costs.unit_cost_gbp by setting
    inflation: float  # costs.inflation, share per year
    paths: int  # run.paths
    horizon_years: int  # meta.horizon_years
    notes: list[str] = field(default_factory=list)
    # statutory process (scenarios with a process section): caseworker FTE from a month on,
    # backlog-clearance plans (cases, from month, by month), changes in requests (factor, from
    # year, ramp years) and refusal-rate targets (calendar year -> share of decisions)
    assessment_fte_by_month: dict[str, float] = field(default_factory=dict)
    review_fte_by_month: dict[str, float] = field(default_factory=dict)
    clearance: list[tuple[float, str, str]] = field(default_factory=list)
    requests_changes: list[tuple[float, int, int]] = field(default_factory=list)
    refusal_targets: dict[int, float] = field(default_factory=dict)


def _growth_path(scn: Scenario) -> tuple[tuple[float, float, float], bool]:
    """The growth path a run uses (calibrate.growth_path), and whether it is learned: typed, or
    from the prior pooled across LAs (none before the SEN2 series: the scenario's own values)."""
    from .calibrate import growth_path, growth_source
    from .pooling import pooled_prior

    prior = None
    if growth_source(scn) == "pooled":
        # (a base year before the SEN2 series has no pooled prior)
        with contextlib.suppress(ValueError):
            prior = pooled_prior(scn.meta.base_year)
    growth, persistence, long_run = growth_path(scn, prior)
    return (float(growth), float(persistence), float(long_run)), prior is not None


def _growth_now(scn: Scenario) -> float:
    """The growth a run starts from: as typed, or the prior pooled across LAs (unless typed, a
    scenario's growth is learned; moving the lever types it)."""
    (growth, _, _), learned = _growth_path(scn)
    return round(growth, 4) if learned else growth


def growth_taper(scn: Scenario) -> tuple[float, float]:
    """(persistence, long-run growth) the run's growth tapers with: the scenario's where typed,
    else the pooled prior's where the growth is learned (demand.growth_persistence, _long_run)."""
    (_, persistence, long_run), _ = _growth_path(scn)
    return persistence, long_run


def levers_from(scn: Scenario) -> Levers:
    """The lever values a validated scenario already has (schema defaults where a key is absent)."""
    return Levers(
        growth=_growth_now(scn),
        requests_per_1000=float(scn.demand.requests_per_1000),
        backlog={int(b.year): float(b.plans) for b in scn.demand.backlog},
        extra_places=[],
        delays={name: int(scn.capacity.delays.get(name, 0)) for name in delayable_projects(scn)},
        max_independent_share=scn.policy.max_independent_share,
        plan_for=float(scn.policy.plan_for),
        mip_gap=float(scn.policy.mip_gap),
        unit_cost_gbp={k: float(v) for k, v in scn.costs.unit_cost_gbp.items()},
        inflation=float(scn.costs.inflation),
        paths=int(scn.run.paths),
        horizon_years=int(scn.meta.horizon_years),
        **_process_levers(scn),
    )


def _process_levers(scn: Scenario) -> dict[str, Any]:
    """The statutory-process levers a scenario already has (empty without a process section)."""
    pr = scn.process
    if pr is None:
        return {}
    return {
        "assessment_fte_by_month": dict(pr.assessment.fte_by_month),
        "review_fte_by_month": dict(pr.reviews.team.fte_by_month),
        "clearance": [(float(c.cases), c.from_month, c.by_month) for c in pr.backlog_clearance],
        "requests_changes": [
            (float(c.factor), int(c.from_year), int(c.ramp_years)) for c in pr.requests_changes
        ],
        "refusal_targets": {int(y): float(v) for y, v in pr.refusal_targets.items()},
    }


def _apply_process(out: dict[str, Any], base: Scenario, levers: Levers) -> None:
    """Write the statutory-process levers that differ from ``base`` into ``out`` (in place)."""
    if base.process is None:
        return
    now = _process_levers(base)
    pr = _section(out, "process")
    if levers.assessment_fte_by_month != now["assessment_fte_by_month"]:
        _section(pr, "assessment")["fte_by_month"] = dict(
            sorted(levers.assessment_fte_by_month.items())
        )
    if levers.review_fte_by_month != now["review_fte_by_month"]:
        _section(pr, "reviews", "team")["fte_by_month"] = dict(
            sorted(levers.review_fte_by_month.items())
        )
    clear = [c for c in levers.clearance if c[0] > 0]
    if clear != now["clearance"]:
        pr["backlog_clearance"] = [
            {"cases": float(n), "from_month": lo, "by_month": hi, "label": APP_SOURCE}
            for n, lo, hi in clear
        ]
    changes = [c for c in levers.requests_changes if not _close(c[0], 1.0)]
    if changes != now["requests_changes"]:
        pr["requests_changes"] = [
            {"factor": float(f), "from_year": int(y), "ramp_years": int(r), "label": APP_SOURCE}
            for f, y, r in changes
        ]
    if levers.refusal_targets != now["refusal_targets"]:
        pr["refusal_targets"] = {
            int(y): float(v) for y, v in sorted(levers.refusal_targets.items())
        }


def delayable_projects(scn: Scenario, setting: str = SPECIAL) -> list[str]:
    """Names of pipeline projects in ``setting`` (special schools by default), in pipeline order."""
    return list(dict.fromkeys(p.name for p in scn.capacity.pipeline if p.setting == setting))


def extra_place_name(item: ExtraPlaces, localities: Mapping[str, str]) -> str:
    """Pipeline name of a lever's extra places, e.g. ``App: resource_base Exeter 2026``."""
    return f"App: {item.setting} {localities.get(item.locality, item.locality)} {item.open_year}"


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(a)), abs(float(b)))


def _section(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The mapping at ``keys``, created empty where absent (a scenario may omit optional sections)."""
    node = data
    for k in keys:
        if not isinstance(node.get(k), dict):
            node[k] = {}
        node = node[k]
    return node


def apply_levers(data: Mapping[str, Any], base: Scenario, levers: Levers) -> dict[str, Any]:
    """A copy of the resolved mapping ``data`` (whose validated form is ``base``) with the levers that
    differ from ``base`` written in; untouched levers leave their keys exactly as they were."""
    out = copy.deepcopy(dict(data))
    now = levers_from(base)
    if not _close(levers.growth, now.growth):
        demand = _section(out, "demand")
        demand["growth"] = float(levers.growth)
        # Typing the growth replaces the learned one; its taper is kept (written too), so the lever
        # moves only the starting rate: a lower rate never gives more plans than the learned one.
        # (a typed growth already tapers as its scenario says: nothing more to write)
        from .calibrate import growth_source

        if growth_source(base) == "pooled":
            persistence, long_run = growth_taper(base)
            demand.setdefault("growth_persistence", persistence)
            demand.setdefault("growth_long_run", long_run)
    if not _close(levers.requests_per_1000, now.requests_per_1000):
        _section(out, "demand")["requests_per_1000"] = float(levers.requests_per_1000)
    backlog = {y: p for y, p in levers.backlog.items() if p > 0 or y in now.backlog}
    if set(backlog) != set(now.backlog) or any(
        not _close(p, now.backlog[y]) for y, p in backlog.items()
    ):
        _section(out, "demand")["backlog"] = [
            {"year": int(y), "plans": float(p)} for y, p in sorted(backlog.items()) if p > 0
        ]
    extra = [e for e in levers.extra_places if e.places > 0]
    if extra:
        names = {loc.id: loc.name for loc in base.geography.localities}
        pipeline = list(_section(out, "capacity").get("pipeline") or [])
        for e in extra:
            pipeline.append(
                {
                    "name": extra_place_name(e, names),
                    "setting": e.setting,
                    "locality": e.locality,
                    "places": float(e.places),
                    "open_year": int(e.open_year),
                    "source": APP_SOURCE,
                }
            )
        out["capacity"]["pipeline"] = pipeline
    changed = {n: d for n, d in levers.delays.items() if int(d) != now.delays.get(n, 0)}
    if changed:
        delays = dict(_section(out, "capacity").get("delays") or {})
        for name, d in changed.items():
            if int(d) > 0:
                delays[name] = int(d)
            else:
                delays.pop(name, None)
        out["capacity"]["delays"] = delays
    if not _close(levers.max_independent_share, now.max_independent_share):
        share = levers.max_independent_share
        _section(out, "policy")["max_independent_share"] = None if share is None else float(share)
    if not _close(levers.plan_for, now.plan_for):
        _section(out, "policy")["plan_for"] = float(levers.plan_for)
    if not _close(levers.mip_gap, now.mip_gap):
        _section(out, "policy")["mip_gap"] = float(levers.mip_gap)
    for s, v in levers.unit_cost_gbp.items():
        if s in now.unit_cost_gbp and not _close(v, now.unit_cost_gbp[s]):
            _section(out, "costs", "unit_cost_gbp")[s] = float(v)
    if not _close(levers.inflation, now.inflation):
        _section(out, "costs")["inflation"] = float(levers.inflation)
    if int(levers.paths) != now.paths:
        _section(out, "run")["paths"] = int(levers.paths)
    if int(levers.horizon_years) != now.horizon_years:
        _section(out, "meta")["horizon_years"] = int(levers.horizon_years)
    _apply_process(out, base, levers)
    return out


def demand_key(data: Mapping[str, Any]) -> str:
    """sha256 of the sections the demand stage reads: equal keys mean equal demand results."""
    part = {k: data.get(k) for k in DEMAND_SECTIONS}
    # A scenario's name and description do not change its demand (the app renames edited runs).
    if isinstance(part.get("meta"), Mapping):
        part["meta"] = {k: v for k, v in part["meta"].items() if k not in ("name", "description")}
    return hashlib.sha256(dump_yaml(part).encode()).hexdigest()


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: node}


def describe_edits(base: Mapping[str, Any], edited: Mapping[str, Any]) -> list[str]:
    """One ``key.path: old -> new`` line per changed value (lists are compared whole)."""
    a, b = _flatten(dict(base)), _flatten(dict(edited))
    lines = []
    for key in sorted(set(a) | set(b)):
        old, new = a.get(key, "(absent)"), b.get(key, "(absent)")
        if old == new:
            continue
        if isinstance(old, list) and isinstance(new, list) and key.endswith("pipeline"):
            added = [p.get("name") for p in new if p not in old and isinstance(p, dict)]
            removed = [p.get("name") for p in old if p not in new and isinstance(p, dict)]
            parts = [f"+ {n}" for n in added] + [f"- {n}" for n in removed]
            lines.append(f"{key}: {'; '.join(parts)}")
        else:
            lines.append(f"{key}: {_short(old)} -> {_short(new)}")
    return lines


def _short(v: Any) -> str:
    """A value as the Scenario tab lists it: whole up to 200 characters (a process edit's list of
    changes fits), shortened beyond."""
    text = str(v)
    return text if len(text) <= 200 else text[:197] + "..."


# Short names of the keys levers edit, for scenario names and pin labels.
EDIT_NAMES = {
    "demand.growth": "growth",
    "demand.requests_per_1000": "requests per 1,000",
    "demand.backlog": "backlog",
    "capacity.pipeline": "extra places",
    "capacity.delays": "delays",
    "policy.max_independent_share": "independent cap",
    "policy.plan_for": "plan for",
    "policy.mip_gap": "plan gap",
    "costs.inflation": "inflation",
    "run.paths": "paths",
    "meta.horizon_years": "years",
    "process.requests_changes": "change in requests",
    "process.backlog_clearance": "backlog clearance",
    "process.refusal_targets": "refusal target",
    "process.assessment.fte_by_month": "assessment FTE",
    "process.reviews.team.fte_by_month": "review FTE",
}
# written beside a typed growth to keep the learned taper (apply_levers): part of the growth edit
_GROWTH_TAPER = ("demand.growth_persistence", "demand.growth_long_run")


def _value_text(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, dict):
        return ", ".join(f"{k} +{d}" for k, d in v.items()) or "none"
    if isinstance(v, list):
        return f"{len(v)} item{'' if len(v) == 1 else 's'}"
    return "none" if v is None else str(v)


def edit_summary(base: Mapping[str, Any], edited: Mapping[str, Any]) -> str:
    """The lever edits in a few words, e.g. ``growth 0.14, years 4, paths 20`` (never truncated)."""
    a, b = _flatten(dict(base)), _flatten(dict(edited))
    parts = []
    for key in sorted(set(a) | set(b)):
        if key in ("meta.name", "meta.description") or a.get(key) == b.get(key):
            continue
        if key in _GROWTH_TAPER and a.get("demand.growth") != b.get("demand.growth"):
            continue
        # a mapping keyed by month or year (FTE from a month, a refusal target from a year) is
        # flattened to key.2026: named as its mapping, then the month or year
        named = next((k for k in EDIT_NAMES if key.startswith(f"{k}.")), None)
        if key.startswith("costs.unit_cost_gbp."):
            name = f"{key.rsplit('.', 1)[-1].replace('_', ' ')} cost"
        elif named is not None:
            name = f"{EDIT_NAMES[named]} {key[len(named) + 1 :]}:"
        else:
            name = EDIT_NAMES.get(key, key.rsplit(".", 1)[-1].replace("_", " "))
        if key == "capacity.pipeline":
            added = len(b.get(key) or []) - len(a.get(key) or [])
            parts.append(f"{name} +{added} projects" if added > 0 else name)
        else:
            parts.append(f"{name} {_value_text(b.get(key))}")
    return ", ".join(parts)


def edited_name(base_name: str, summary: str) -> str:
    """The name an edited scenario runs and downloads under: the base's name and its edits."""
    return f"{base_name}, edited: {summary}" if summary else base_name


def name_edits(data: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with ``meta.name`` saying how it differs from ``base`` (unchanged if it does not),
    so a downloaded edit never passes for the scenario it came from."""
    summary = edit_summary(base, data)
    if not summary:
        return dict(data)
    out = copy.deepcopy(dict(data))
    name = str((base.get("meta") or {}).get("name", "scenario"))
    _section(out, "meta")["name"] = edited_name(name, summary)
    return out
