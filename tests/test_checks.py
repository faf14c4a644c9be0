"""Garbage in, a clear error out: mutations of the shipped scenarios through validate and run.

Two checks over random mutations (NaN, infinity, huge and tiny numbers, wrong types, dropped keys,
year keys given twice, long lists) of every scenario in scenarios/:
- in-process, a few hundred per run (hypothesis): ``validate`` never raises anything but a
  ScenarioError whose problems are one line each, naming the file as given;
- a sample of those ``validate`` accepts, run for real (``sendplan run --paths 2 --no-reports``
  on a short horizon): each exits ok with finite tables, or fails with one line, within the time
  limit; none is called bad input by ``run`` after ``validate`` accepted it.
Set SENDPLAN_MUTATION_SEED to replay a sample of real runs.
"""

from __future__ import annotations

import copy
import math
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.checks import MAX_NEW_PLANS_PER_YEAR, demand_size_problems
from model.engine import BLANK_WHERE_NOT_APPLICABLE
from model.io import Problem, ScenarioError, load_scenario, validate_mapping

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))
BASES = {p.stem: load_scenario(p).resolved for p in SHIPPED}
RUN_SAMPLE = 10  # real runs per test run (a few seconds each on two idle cores)
RUN_SECONDS = 120  # per scenario: far above a short-horizon run; the solver limit is lower


def _leaves(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _leaves(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _leaves(v, (*prefix, i))
    return out


PATHS = {name: _leaves(data) for name, data in BASES.items()}


def _replacements(value: Any) -> list[Any]:
    """Garbage for one value, by its type (the classes the issue found, and a few more)."""
    drop = "__drop__"
    if isinstance(value, bool):
        return [not value, "yes please", 2, None, drop]
    if isinstance(value, int | float):
        x = float(value)
        return [math.nan, math.inf, -math.inf, 1e308, -1e308, 0, -x, x * 1e6, x + 1e-4,
                10**30, 2**63, str(value), True, None, [x], drop, x * 1.0001, 1e-300]  # fmt: skip
    if isinstance(value, str):
        return ["", "x" * 300, "../../etc/passwd", "embedded:../x", 0, None, "2023", drop]
    if isinstance(value, list):
        return [[], value * 40, value[:1], "a list", None, drop]
    if isinstance(value, dict):
        collide = {**value, **{str(k): v for k, v in value.items() if isinstance(k, int)}}
        return [{}, collide, [1, 2], None, drop]
    return [None, drop]


def _mutate(name: str, picks: list[tuple[int, int]]) -> dict[str, Any]:
    data = copy.deepcopy(BASES[name])
    for path_pick, value_pick in picks:
        path = PATHS[name][path_pick % len(PATHS[name])]
        try:
            node: Any = data
            for k in path[:-1]:
                node = node[k]
            options = _replacements(node[path[-1]])
            new = options[value_pick % len(options)]
            if new == "__drop__":
                del node[path[-1]]
            else:
                node[path[-1]] = new
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced the parent
    return data


def _validate(data: dict[str, Any], file: str) -> list[Problem] | None:
    """None if ``validate`` accepts the mapping, else its problems (anything else propagates)."""
    try:
        validate_mapping(data, file)
    except ScenarioError as e:
        return e.problems
    return None


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    name=st.sampled_from(sorted(BASES)),
    picks=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 100)), min_size=1, max_size=3),
)
def test_validate_never_raises_on_mutations(name: str, picks: list[tuple[int, int]]) -> None:
    problems = _validate(_mutate(name, picks), "mutated.yaml")
    for p in problems or []:
        line = str(p)
        assert "\n" not in line and line.startswith("mutated.yaml: "), line
        assert p.message


class _NoAliases(yaml.SafeDumper):
    """Writes a mutated mapping as plain YAML: a mutation may share one sub-mapping in many places,
    which PyYAML would write as anchors and aliases, and a file with over 100 aliases is refused as
    bad input (the guard against alias bombs), which is not what this test is about."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _accepted_sample(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """``n`` mutated scenarios that ``validate`` accepts, on a short horizon."""
    out: list[dict[str, Any]] = []
    for _ in range(4000):
        if len(out) == n:
            break
        name = rng.choice(sorted(BASES))
        picks = [(rng.randrange(10**6), rng.randrange(100)) for _ in range(rng.randint(1, 2))]
        data = _mutate(name, picks)
        meta = data.get("meta")
        if isinstance(meta, dict) and isinstance(meta.get("horizon_years"), int):
            meta["horizon_years"] = max(1, min(meta["horizon_years"], 4))
        if data != BASES[name] and _validate(data, "m.yaml") is None:
            out.append(data)
    return out


def _finite_tables(folder: Path) -> None:
    for f in folder.glob("*.csv"):
        df = pd.read_csv(f)
        numeric = df.select_dtypes(include="number")
        allowed = set(BLANK_WHERE_NOT_APPLICABLE.get(f.stem, ()))
        for col in numeric.columns:
            values = numeric[col]
            assert not values.isin([math.inf, -math.inf]).any(), f"{f.name}: {col} infinite"
            assert col in allowed or not values.isna().any(), f"{f.name}: {col} NaN"


@pytest.mark.slow
def test_what_validate_accepts_runs_or_fails_in_one_line(tmp_path: Path) -> None:
    seed = int(os.environ.get("SENDPLAN_MUTATION_SEED") or random.SystemRandom().randrange(10**9))
    sample = _accepted_sample(random.Random(seed), RUN_SAMPLE)
    assert len(sample) == RUN_SAMPLE, f"seed {seed}: too few accepted mutations"
    files = []
    for i, data in enumerate(sample):
        f = tmp_path / f"m{i:02d}.yaml"
        f.write_text(yaml.dump(data, Dumper=_NoAliases, sort_keys=False))
        files.append(f)
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "model.cli",
            "run",
            *map(str, files),
            "--paths",
            "2",
            "--no-reports",
            "--jobs",
            "2",
            "--out",
            str(out),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS * len(files) / 2,
        cwd=tmp_path,
    )
    why = f"seed {seed} (SENDPLAN_MUTATION_SEED={seed} replays it):\n{proc.stderr[-3000:]}"
    assert proc.returncode in (0, 1), why
    assert "Traceback" not in proc.stderr, why
    cmp = pd.read_csv(out / "comparison.csv")
    assert len(cmp) == len(files), why  # run called none of them bad input
    for f in files:
        # a run's own warnings (limits breached, instalments withheld) are not failures
        lines = [
            line
            for line in proc.stderr.splitlines()
            if line.startswith(f"{f}: ") and not line.startswith(f"{f}: warning: ")
        ]
        row = cmp[cmp["source"] == str(f)].iloc[0]
        if row["status"] == "ok":
            assert not lines, why
            _finite_tables(out / row["slug"])
            summary = pd.read_json(out / row["slug"] / "summary.json", typ="series")
            assert summary["run_seconds"] < RUN_SECONDS, why
        else:
            assert row["status"] == "failed", why
            assert len(lines) == 1 and ": run failed: " in lines[0], why


def test_demand_that_cannot_be_drawn_is_bad_input(devon_dict) -> None:
    devon_dict["demand"]["levers"] = [
        {"rate": "new_plans", "factor": 10, "from_year": 2025} for _ in range(12)
    ]
    problems = _validate(devon_dict, "x.yaml")
    assert problems is not None
    assert [p.path for p in problems] == ["demand"]
    assert f"more than {MAX_NEW_PLANS_PER_YEAR:.0e}" in problems[0].message
    devon_dict["demand"]["levers"] = devon_dict["demand"]["levers"][:1]  # tenfold is plausible
    assert _validate(devon_dict, "x.yaml") is None


def test_stage_rules_are_checked_by_validate(devon_dict) -> None:
    scn = validate_mapping(devon_dict, "x.yaml")
    assert demand_size_problems(scn) == []
    devon_dict["population"]["base_0_25"] = dict.fromkeys(devon_dict["population"]["base_0_25"], 0)
    devon_dict["demand"]["growth_end_year"] = 2020
    problems = {(p.path, p.message) for p in _validate(devon_dict, "x.yaml") or []}
    assert ("population.base_0_25", "the 0-25 population is zero: no rates per head") in problems
    assert ("demand.growth_end_year", "2020 is before meta.base_year 2024") in problems


def test_placement_arrays_are_bounded(devon_dict) -> None:
    from model.scenario import Locality, stage_rule_problems

    scn = validate_mapping(devon_dict, "x.yaml")
    assert "geography.localities" not in dict(stage_rule_problems(scn))
    scn.geography.localities = [Locality(id=f"l{i}", name=f"L{i}") for i in range(64)]
    assert "geography.localities" not in dict(stage_rule_problems(scn))  # 2.4e7 cells: runs
    scn.demand.needs = [f"n{i}" for i in range(40)]
    problems = dict(stage_rule_problems(scn))  # 8.1e7 cells
    assert "placement cells, more than 5e+07" in problems["geography.localities"]
