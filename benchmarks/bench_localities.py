"""Localities benchmark: how a whole run grows with the number of localities.

An LA modelled by school planning area has dozens of localities. This splits each of Devon's eight
districts into 1, 2, 4 and 8 areas (8, 16, 32 and 64 localities: population and places shared
equally, centres spread a few km around the district's, committed new places in the first area,
``policy.max_provider_localities: 8`` as an LA modelled by planning area would set it),
runs each (``run_scenario``, the default paths, no reports) and prints the seconds, the growth
exponent b of time ~ localities^b between 8 and 64, and the 64/8 ratio. Target: 64 localities
within 5x the 8-locality time (at most linear in localities x settings).
Run: ``python -m benchmarks localities [8 16 32 64]``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from model.engine import run_scenario  # noqa: E402
from model.io import default_scenario_path, load_scenario_text  # noqa: E402
from model.machine import one_line  # noqa: E402

TARGET = 5.0
SIZES = (8, 16, 32, 64)
PROVIDERS = 8  # policy.max_provider_localities in every size
SPLIT_SECTIONS = ("population.base_0_25",)  # locality -> people: shared equally between areas


def split_localities(data: dict[str, Any], parts: int) -> dict[str, Any]:
    """Devon's scenario mapping with each locality split into ``parts`` equal areas."""
    if parts == 1:
        return data
    geo = data["geography"]
    ids = [loc["id"] for loc in geo["localities"]]
    areas = {i: [f"{i}_{k + 1}" for k in range(parts)] for i in ids}
    new_locs = []
    for loc in geo["localities"]:
        for k, a in enumerate(areas[loc["id"]]):
            ang = 2 * math.pi * k / parts
            new_locs.append(
                {
                    "id": a,
                    "name": f"{loc['name']} {k + 1}",
                    "lat": round(loc["lat"] + 0.04 * math.sin(ang), 4),
                    "lon": round(loc["lon"] + 0.06 * math.cos(ang), 4),
                }
            )
    geo["localities"] = new_locs
    geo.pop("distances_km", None)  # from the coordinates
    geo["within_locality_km"] = geo.get("within_locality_km", 10.0) / math.sqrt(parts)

    def walk(node: Any, path: str) -> Any:
        # a mapping keyed by localities: people and places are shared between the areas, rates
        # and factors copied; a single locality reference goes to the first area; a list of
        # localities names all their areas
        if isinstance(node, dict):
            if node and set(node) <= set(ids):
                additive = path in SPLIT_SECTIONS or path.startswith("capacity.")
                return {
                    a: (v / parts if additive else v) for i, v in node.items() for a in areas[i]
                }
            return {
                k: (
                    areas[v][0]
                    if k == "locality" and isinstance(v, str) and v in areas
                    else walk(v, f"{path}.{k}" if path else str(k))
                )
                for k, v in node.items()
            }
        if isinstance(node, list):
            if node and all(isinstance(v, str) and v in areas for v in node):
                return [a for v in node for a in areas[v]]
            return [walk(v, path) for v in node]
        return node

    return {k: (v if k == "geography" else walk(v, k)) for k, v in data.items()}


def scenario(n_localities: int) -> Any:
    data = yaml.safe_load(default_scenario_path().read_text(encoding="utf-8"))
    data = split_localities(data, n_localities // 8)
    data["meta"]["name"] = f"Devon split into {n_localities} localities (benchmark)"
    # as an LA modelled by planning area would: home and the 7 nearest areas (all 8 for Devon)
    data.setdefault("policy", {})["max_provider_localities"] = PROVIDERS
    return load_scenario_text(yaml.safe_dump(data, sort_keys=False), f"devon_{n_localities}.yaml")


def _gap(opt: dict[str, Any]) -> str:
    """The plan's gap to its best bound, and to the relaxation's alone."""
    gap, obj, lp = opt.get("mip_gap"), opt.get("objective_gbp"), opt.get("lp_bound_gbp")
    if gap is None or not obj or lp is None:
        return "gap not reported"
    return f"gap {gap:.2%}, {(obj - lp) / obj:.2%} to the relaxation alone"


def main(argv: list[str] | None = None) -> dict[str, float]:
    sizes = [int(a) for a in (argv or [])] or list(SIZES)
    print(one_line())
    run_scenario(scenario(8))  # warm-up: compiled kernels and caches loaded once
    secs: dict[int, float] = {}
    for n in sizes:
        resolved = scenario(n)
        t0 = time.perf_counter()
        res = run_scenario(resolved)
        secs[n] = time.perf_counter() - t0
        opt = res.summary.get("optimisation", {})
        print(
            f"{n:>3} localities: {secs[n]:7.2f} s  (LP {opt.get('variables', 0):,} variables, "
            f"solve {opt.get('solve_seconds', 0):.2f} s, {res.summary['paths']} paths; "
            f"whole-unit plan {_gap(opt)})",
            flush=True,
        )
    lo, hi = min(secs), max(secs)
    out = {f"seconds_{n}": s for n, s in secs.items()}
    if hi > lo:
        b = math.log(secs[hi] / secs[lo]) / math.log(hi / lo)
        ratio = secs[hi] / secs[lo]
        print(f"growth exponent (time ~ localities^b, {lo} to {hi}): b = {b:.2f}")
        print(
            f"ratio {hi} / {lo} localities: {ratio:.2f} (target {TARGET:g} or less: "
            f"{'met' if ratio <= TARGET else 'not met'})"
        )
        out.update(exponent=b, ratio=ratio)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
