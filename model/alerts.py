"""Warnings a run raises for people: a policy limit breached, children left without a place, a
build plan not proven within its gap, a deficit the general fund must carry.

Each warning is ``{kind, message, size, years}`` in ``summary["warnings"]``: ``message`` is one
sentence that states what happened with its size and years (never a bare limit such as "cap
0.08"), ``size`` the largest amount in the message's unit and ``years`` the years affected (January census years for places, financial years by starting
year for money, as the message says). Every
stage appends its own with ``add_warning``; the CLI, both reports and the app show them all the
same way, whatever their kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

PROVISIONAL = "provisional"  # sufficiency.solve.PROVISIONAL (not imported: alerts stays light)

MIN_PLACES = 0.5  # breaches and unmet places smaller than half a child are solver round-off


@dataclass(frozen=True)
class RunWarning:
    """One warning: what kind, a sentence for people, its largest size and the years affected."""

    kind: str
    message: str
    size: float | None = None
    years: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        size = None if self.size is None else round(float(self.size), 2)
        return {"kind": self.kind, "message": self.message, "size": size, "years": list(self.years)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunWarning:
        size = d.get("size")
        years = d.get("years") or ()
        return cls(
            kind=str(d.get("kind", "warning")),
            message=str(d.get("message", "")),
            size=None if size is None else float(size),
            years=tuple(int(y) for y in years),
        )


def add_warning(summary: MutableMapping[str, Any], warning: RunWarning) -> None:
    """Append one warning to ``summary["warnings"]``."""
    summary.setdefault("warnings", []).append(warning.to_dict())


def warnings_of(summary: Mapping[str, Any]) -> list[RunWarning]:
    """The run's warnings, in the order the stages raised them (malformed entries kept as text)."""
    out = []
    for w in summary.get("warnings") or []:
        if isinstance(w, Mapping):
            out.append(RunWarning.from_dict(w))
        else:
            out.append(RunWarning("warning", str(w)))
    return out


def warning_lines(summary: Mapping[str, Any]) -> list[str]:
    """One line per warning, as the CLI prints them."""
    return [w.message for w in warnings_of(summary)]


def warnings_table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """The warnings as a table for the reports and the app: kind, message, size, years."""
    rows = [
        {"kind": w.kind, "message": w.message, "size": w.size, "years": year_span(w.years)}
        for w in warnings_of(summary)
    ]
    return pd.DataFrame(rows, columns=["kind", "message", "size", "years"])


def year_span(years: Iterable[int]) -> str:
    """Years as people write them: "2027-2031", or "2027, 2029-2030" where there are gaps."""
    ys = sorted({int(y) for y in years})
    if not ys:
        return ""
    runs: list[tuple[int, int]] = []
    for y in ys:
        if runs and y == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], y)
        else:
            runs.append((y, y))
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def fy_span(years: Iterable[int]) -> str:
    """Financial years (by starting year) as labels: "2025-26 to 2031-32", "2028-29"."""
    text = year_span(years)
    label = lambda y: f"{y}-{(int(y) + 1) % 100:02d}"  # noqa: E731
    parts = []
    for part in text.split(", ") if text else []:
        a, _, b = part.partition("-")
        parts.append(label(int(a)) if not b else f"{label(int(a))} to {label(int(b))}")
    return ", ".join(parts)


def _places(v: float) -> str:
    return f"{v:,.0f} place{'s' if round(v) != 1 else ''}"


# --------------------------------------------------------------------------- the optimiser's


SHARE_LIMITS = {
    "independent": ("max_independent_share", "independent placements", "above the cap of"),
    "mainstream": ("min_mainstream_share", "mainstream placements", "below the floor of"),
}


def _at_year(opt: Mapping[str, Any], key: str, year: int) -> float | None:
    """``opt[key][year]``, keyed by int in memory or by str once read back from summary.json."""
    by_year = opt.get(key) or {}
    v = by_year.get(year, by_year.get(str(year)))
    return None if v is None else float(v)


def _beyond_any_plan(
    opt: Mapping[str, Any], kind: str, row: Mapping[str, Any] | None, year: int
) -> str | None:
    """For the independent cap: how many of the places above it in ``year`` no plan could move
    (the optimiser's ``independent_places_floor_by_year``), in words; None where none or unknown."""
    if kind != "independent" or row is None:
        return None
    floor = _at_year(opt, "independent_places_floor_by_year", year)
    independent = _at_year(opt, "independent_places_by_year", year)
    if floor is None or independent is None:
        return None
    share, limit = float(row.get("value") or 0.0), row.get("limit")
    if share <= 0 or limit is None:
        return None
    over = floor - float(limit) * independent / share  # places of the floor above the cap
    if over < MIN_PLACES:
        return None
    first = opt.get("first_decision_year")
    before = f"before {first}" if first is not None else "before the first decision year"
    return (
        f"{_places(over)} of them in {year} no plan can move (children placed {before}, or in a "
        "band only independent settings suit)"
    )


def limit_warnings(opt: Mapping[str, Any]) -> list[RunWarning]:
    """Warnings from the optimiser's summary: share limits breached, soft limits exceeded, unmet
    places, and a whole-unit plan not proven within ``policy.mip_gap``."""
    limits = opt.get("limit_modes") or {}
    out: list[RunWarning] = []
    shares = {
        (r.get("constraint"), int(r["year"])): r
        for r in opt.get("binding_policy_limits") or []
        if r.get("unit") == "share" and "year" in r
    }
    for kind, by_year in (opt.get("policy_share_breaches") or {}).items():
        key, what, side = SHARE_LIMITS.get(kind, (kind, kind, "past the limit of"))
        big = {int(y): float(v) for y, v in by_year.items() if float(v) >= MIN_PLACES}
        if not big:
            continue
        years = tuple(sorted(big))
        worst = max(big, key=big.__getitem__)
        row = shares.get((f"share_{kind}", worst))
        mode = limits.get(key, "soft")
        reach = ""
        if row is not None and row.get("limit") is not None:
            reach = f" (share {row['value']:.1%} in {worst}, {side} {float(row['limit']):.1%})"
        why = (
            "a soft limit: breached where keeping to it cost more than its penalty"
            if mode == "soft"
            else "a hard limit: breached only where placements already made leave no choice"
        )
        # (a hard cap leaves such entrants unmet instead: only placements already made breach it)
        fixed = _beyond_any_plan(opt, kind, row, worst) if mode == "soft" else None
        if fixed is not None:
            why = f"{fixed}; the rest {why.split(': ', 1)[1]}"
        out.append(
            RunWarning(
                f"{key}_breached",
                f"policy.{key} is breached in {year_span(years)}: {what} are up to "
                f"{_places(big[worst])} {side.removesuffix(' of')}{reach}; {why}.",
                big[worst],
                years,
            )
        )
    for key, br in (opt.get("limit_breaches") or {}).items():
        total = float(br.get("total") or 0.0)
        if total <= 1e-6:
            continue
        years = tuple(int(y) for y in br.get("years") or ())
        unit = br.get("unit", "places")
        amount = f"£{total:,.0f}" if unit == "GBP" else f"{total:,.1f} {unit}"
        when = f" in {year_span(years)}" if years else ""
        out.append(
            RunWarning(
                f"{key}_breached",
                f"policy.{key} (a soft limit) is exceeded by {amount}{when}: "
                f"{br.get('what', 'breached at its penalty')}.",
                total,
                years,
            )
        )
    unmet = {
        int(y): float(v)
        for y, v in (opt.get("unmet_places_by_year") or {}).items()
        if float(v) >= MIN_PLACES
    }
    if unmet:
        years = tuple(sorted(unmet))
        worst = max(unmet, key=unmet.__getitem__)
        out.append(
            RunWarning(
                "unmet_places",
                f"{_places(unmet[worst])} without a suitable place in January {worst} (unmet "
                f"demand in {year_span(years)}): no setting the children's bands allow has room "
                "within the limits (capacity, builds, travel, hard policy limits).",
                unmet[worst],
                years,
            )
        )
    gap, target = opt.get("mip_gap"), opt.get("mip_gap_target")
    if gap is not None and target is not None and float(gap) > float(target) + 1e-9:
        searched = "branch_and_bound" in (opt.get("solve_stages_seconds") or {})
        provisional = opt.get("status") == PROVISIONAL
        why = (
            "branch and bound was deferred (a first answer, rounded from the LP, for a run with "
            "branch and bound to refine)"
            if provisional
            else "the solver stopped at its time limit"
            if searched
            else "branch and bound was not started, as it could not have got past re-solving the "
            "LP relaxation within its time limit"
        )
        out.append(
            RunWarning(
                "mip_gap",
                f"The whole-unit build plan is proven within {float(gap):.2%} of the cheapest "
                f"possible, short of policy.mip_gap ({float(target):.2%}): {why}"
                + (
                    "."
                    if provisional
                    else "; raise policy.mip_time_limit_seconds for a tighter plan."
                ),
                float(gap),
                (),
            )
        )
    return out
