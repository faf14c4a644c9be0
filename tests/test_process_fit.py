"""Calibration of the statutory pipeline from SEN2 for any LA (what `sendplan init` calls)."""

from __future__ import annotations

import fnmatch
from typing import Any

import numpy as np
import pytest

from model.io import load_scenario
from model.process import simulate
from model.process_fit import history_inputs, process_inputs_for_la
from model.scenario import Process


def leaves(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        return [p for k, v in node.items() for p in leaves(v, f"{prefix}{k}.")]
    return [prefix[:-1]]


@pytest.fixture(scope="module")
def devon_fit() -> dict[str, Any]:
    return process_inputs_for_la("Devon")


def test_devon_default_carries_the_calibrated_sen2_values(devon_fit: dict[str, Any]) -> None:
    """The embedded Devon process section is what the calibration gives (fitted values included;
    Devon takes its 2024 shares where init takes the mean of 2022-2024)."""
    got = devon_fit["process"]
    pr = load_scenario(None).scenario.process
    assert pr is not None
    for key in (
        "first_year",
        "complex_share",
        "priority_share",
        "open_assessments_start",
    ):
        assert getattr(pr, key) == pytest.approx(got[key], abs=1e-3), key
    for key in ("requests_history", "refusal_history", "issue_history", "issued_history"):
        assert getattr(pr, key) == pytest.approx(got[key]), key
    assert pr.within_20_weeks_history == pytest.approx(got["within_20_weeks_history"])
    assert pr.assessment.history_per_month == pytest.approx(got["assessment"]["history_per_month"])
    assert devon_fit["fit"]["label"] == "fitted (in-sample)"


@pytest.mark.parametrize("la", ["Devon", "Rutland", "North Northamptonshire"])
def test_every_la_gets_a_valid_calibrated_section_with_provenance(la: str) -> None:
    out = process_inputs_for_la(la)
    section = Process.model_validate(out["process"])
    keys = [f"process.{k}" for k in leaves(out["process"])]
    patterns = [r["key"] for r in out["provenance"]]
    missing = [k for k in keys if not any(fnmatch.fnmatchcase(k, p) for p in patterns)]
    assert missing == []
    assert all(r["kind"] in {"source", "derived", "assumption"} for r in out["provenance"])
    # published years: capacity is the published rate, so plans issued land near the published
    # figure wherever the queue holds enough cases (in-sample: the fit chose the opening backlog);
    # a small LA whose published assessments outrun its agreed requests (Rutland) issues less
    last = max(section.requests_history)
    inp = history_inputs(section, last)
    flows = simulate(inp)
    cal = inp.calendar_years
    model = np.array([flows["plans_issued"][0, cal == y].sum() for y in section.issued_history])
    published = np.array(list(section.issued_history.values()))
    assert np.abs(model.sum() / published.sum() - 1) < 0.20
    # conservation over the published years
    entered = flows["requests"].sum() + section.open_assessments_start
    left = sum(
        flows[k].sum() for k in ("refusals", "withdrawn", "plans_issued", "plans_not_issued")
    )
    assert entered == pytest.approx(
        left + flows["open_decisions"][0, -1] + flows["open_assessments"][0, -1]
    )


def test_an_unknown_la_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="did you mean"):
        process_inputs_for_la("Devonn")
