"""The engine's last guard: a run never writes NaN or infinity into a table or summary.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model import engine
from model.cli import main
from model.engine import NonFiniteOutput, check_finite, run_scenario, write_outputs
from model.io import load_scenario

SHORT = ["--set", "meta.horizon_years=3", "--paths", "2", "--no-reports"]


@pytest.fixture(scope="module")
def results() -> engine.Results:
    """A real three-year run of the Devon default with two paths."""
    return run_scenario(load_scenario(None, ["meta.horizon_years=3"]), paths=2)


def test_a_real_run_is_finite_and_its_summary_strict_json(results, tmp_path: Path) -> None:
    check_finite(results)  # blanks only where documented as not applicable
    folder = write_outputs(results, tmp_path, reports=False)
    text = (folder / "summary.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"summary.json holds {c}"))


@pytest.mark.parametrize(
    ("table", "column", "value", "words"),
    [
        ("costs", "cost_gbp", math.nan, "the costs stage wrote NaN into costs.cost_gbp"),
        ("finance", "cumulative_deficit_gbp", -math.inf, "finance stage wrote infinity"),
        ("demand", "plans", math.inf, "the demand stage wrote infinity into demand.plans"),
        ("costs", "places", math.inf, "costs.places"),  # blank allowed there, infinity never
    ],
)
def test_non_finite_tables_fail_naming_stage_and_column(
    results, tmp_path: Path, table: str, column: str, value: float, words: str
) -> None:
    df = results.tables[table]
    saved = df[column].copy()
    df.loc[df.index[0], column] = value
    try:
        with pytest.raises(NonFiniteOutput, match=words):
            write_outputs(results, tmp_path, reports=False)
    finally:
        df[column] = saved
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary folder


def test_non_finite_summary_value_fails(results, tmp_path: Path) -> None:
    results.summary["capital_limit_test"] = {"limit": float("-inf")}
    try:
        with pytest.raises(NonFiniteOutput, match="summary.json: capital_limit_test.limit"):
            write_outputs(results, tmp_path, reports=False)
        results.summary["capital_limit_test"] = np.float64("nan")
        with pytest.raises(NonFiniteOutput, match="capital_limit_test"):
            check_finite(results)
    finally:
        del results.summary["capital_limit_test"]


def test_a_stage_writing_nan_exits_1_with_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    real = engine.run_scenario

    def leaky(resolved, **kw):
        res = real(resolved, **kw)
        res.tables["finance"].loc[0, "hnb_spend_gbp"] = math.nan
        return res

    monkeypatch.setattr(engine, "run_scenario", leaky)
    code = main(["run", "--out", str(tmp_path), *SHORT])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [
        "embedded:devon: run failed: NonFiniteOutput: the finance stage wrote NaN into "
        "finance.hnb_spend_gbp"
    ]
    assert not (tmp_path / "devon").exists()


def test_a_demand_stage_passed_in_gives_the_same_run_without_rerunning_its_pipeline(
    results, monkeypatch
) -> None:
    """The app's path: the demand stage (with its statutory pipeline) computed once, then the
    engine on it, gives every table of the CLI's run, and the pipeline is not run again."""
    from model.demand import run_demand
    from model.process import pipeline_for

    resolved = load_scenario(None, ["meta.horizon_years=3"])
    scn = resolved.scenario
    assert scn.process is not None  # the default has a statutory pipeline
    pipeline = pipeline_for(scn, 2, scn.run.seed, resolved.source)
    demand = run_demand(scn, 2, scn.run.seed, source=resolved.source, pipeline=pipeline)
    assert demand.pipeline is pipeline

    def again(*_args: object) -> None:
        raise AssertionError("the statutory pipeline ran twice")

    monkeypatch.setattr(engine, "pipeline_for", again)
    cached = run_scenario(resolved, paths=2, demand=demand)
    assert cached.tables.keys() == results.tables.keys()
    for name, df in results.tables.items():
        pd.testing.assert_frame_equal(cached.tables[name], df, check_exact=True, obj=name)


def test_a_deferred_robustness_check_is_run_when_the_outputs_are_written(
    results, tmp_path: Path
) -> None:
    """A run that leaves the robustness check out (the app's lever answers) says so in its
    summary; writing its outputs runs the check, with exactly the figures of a run that did it
    at once (the same paths in the same groups), and changes nothing else."""
    deferred = run_scenario(results.resolved, paths=2, robustness=False)
    rob = deferred.summary["optimisation"]["robustness"]
    assert rob["deferred"] and rob["paths_evaluated"] == 0
    assert deferred.stages.paths.robust is None
    # the finance bands and the plan do not wait for the check
    pd.testing.assert_frame_equal(deferred.tables["finance"], results.tables["finance"])
    assert deferred.summary["headlines"] == results.summary["headlines"]
    folder = write_outputs(deferred, tmp_path, reports=False)
    written = json.loads((folder / "summary.json").read_text())["optimisation"]["robustness"]
    full = dict(results.summary["optimisation"]["robustness"])
    assert written["paths_evaluated"] == full["paths_evaluated"] == 2 and "deferred" not in written
    written.pop("seconds"), full.pop("seconds")
    assert written == full
    np.testing.assert_array_equal(
        deferred.stages.paths.robust.plan_cost_gbp, results.stages.paths.robust.plan_cost_gbp
    )
    # a run that has its check is written as it is (no second check)
    before = results.summary["optimisation"]["robustness"]
    engine.complete_robustness(results)
    assert results.summary["optimisation"]["robustness"] is before
