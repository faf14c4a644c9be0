"""Warnings for people: built from what the optimiser and finance found, printed by the CLI, shown
in report.xlsx and report.html (the app: tests/test_app.py), each with its size and years."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest

from model.alerts import (
    RunWarning,
    add_warning,
    fy_span,
    limit_warnings,
    warning_lines,
    warnings_of,
    warnings_table,
    year_span,
)
from model.cli import main


def test_year_span_reads_like_a_person_writes_it() -> None:
    assert year_span([2029, 2027, 2028, 2031]) == "2027-2029, 2031"
    assert year_span([2026]) == "2026"
    assert year_span([]) == ""
    assert fy_span([2025, 2026, 2027, 2029]) == "2025-26 to 2027-28, 2029-30"


def test_warnings_round_trip_through_the_summary() -> None:
    summary: dict = {}
    w = RunWarning("unmet_places", "3 places without a suitable place", 3.25, (2027, 2028))
    add_warning(summary, w)
    assert summary["warnings"] == [
        {"kind": "unmet_places", "message": w.message, "size": 3.25, "years": [2027, 2028]}
    ]
    assert json.loads(json.dumps(summary))["warnings"] == summary["warnings"]
    assert warnings_of(summary) == [w]
    assert warning_lines(summary) == [w.message]
    assert warnings_table(summary).to_dict("records") == [
        {"kind": "unmet_places", "message": w.message, "size": 3.25, "years": "2027-2028"}
    ]


def test_a_build_plan_short_of_its_gap_is_a_warning() -> None:
    opt = {
        "mip_gap": 0.012,
        "mip_gap_target": 0.01,
        "solve_stages_seconds": {"branch_and_bound": 30},
    }
    (w,) = limit_warnings(opt)
    assert w.kind == "mip_gap" and "1.20%" in w.message and "1.00%" in w.message
    assert "stopped at its time limit" in w.message
    opt["solve_stages_seconds"] = {"relaxation": 20.0, "rounded": 15.0}  # no search was started
    (w,) = limit_warnings(opt)
    assert "branch and bound was not started" in w.message
    assert limit_warnings({"mip_gap": 0.004, "mip_gap_target": 0.01}) == []


def test_round_off_is_not_a_warning() -> None:
    opt = {
        "policy_share_breaches": {"independent": {"2027": 1e-3}},
        "unmet_places_by_year": {2027: 0.2},
    }
    assert limit_warnings(opt) == []


@pytest.fixture(scope="module")
def capped_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """Devon over three years with a 1% independent cap: placements already made keep about 6%
    independent, so the (soft) cap cannot be met in 2026 and 2027, the years the plan decides."""
    out = tmp_path_factory.mktemp("capped")
    import contextlib
    import io

    err, out_text = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out_text):
        code = main(
            [
                "run",
                "--out",
                str(out),
                "--paths",
                "2",
                "--set",
                "meta.horizon_years=3",
                "--set",
                "policy.max_independent_share=0.01",
                "--no-progress",
            ]
        )
    assert code == 0, err.getvalue()
    return out / "devon", err.getvalue(), out_text.getvalue()


def test_an_unmet_cap_is_printed_by_the_cli_with_its_size_and_years(capped_run) -> None:
    folder, stderr, stdout = capped_run
    summary = json.loads((folder / "summary.json").read_text())
    (w,) = [w for w in summary["warnings"] if w["kind"] == "max_independent_share_breached"]
    assert w["years"] == [2026, 2027] and w["size"] > 100
    breach = summary["optimisation"]["policy_share_breaches"]["independent"]
    assert w["size"] == pytest.approx(max(breach.values()), abs=0.01)
    line = next(x for x in stderr.splitlines() if "max_independent_share" in x)
    assert "warning: policy.max_independent_share is breached in 2026-2027" in line
    assert "above the cap of 1.0%" in line
    assert "places above the cap (share" in line and "the limit" not in line
    # how the optimiser finished: status and the gap of the whole-unit build plan
    gap = summary["optimisation"]["mip_gap"]
    assert f"(optimiser highs: {summary['status']}, gap {gap:.2%})" in stdout


def test_an_unmet_cap_is_shown_in_both_reports(capped_run) -> None:
    folder, _, _ = capped_run
    summary = json.loads((folder / "summary.json").read_text())
    message = next(
        w["message"] for w in summary["warnings"] if w["kind"] == "max_independent_share_breached"
    )
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "<h2>Warnings</h2>" in html and message in html.replace("&#x27;", "'")
    ws = openpyxl.load_workbook(folder / "report.xlsx")["Summary"]
    cells = [ws.cell(r, 1).value for r in range(1, ws.max_row + 1)]
    assert "Warning" in cells and message in cells
    row = cells.index(message) + 1
    assert ws.cell(row, 3).value == "2026-2027"
    assert ws.cell(row, 2).value == pytest.approx(
        next(w["size"] for w in summary["warnings"] if w["message"] == message)
    )
    # the limit is described with what happens when it cannot be met, not as a bare number
    labels = {ws.cell(r, 1).value: ws.cell(r, 2).value for r in range(1, ws.max_row + 1)}
    assert labels["Cap on independent share"].startswith("1.0% (soft: breached at £125,000")


def test_an_unmet_cap_says_how_much_of_it_no_plan_can_move(capped_run) -> None:
    """The independent places no plan can avoid (placed before the first decision year, or in a
    band only independent settings suit) bound the plan from below, and the warning counts the
    part of the breach they make: a cap the lever cannot reach is said to be out of reach."""
    folder, stderr, _ = capped_run
    opt = json.loads((folder / "summary.json").read_text())["optimisation"]
    floor = {int(y): v for y, v in opt["independent_places_floor_by_year"].items()}
    placed = {int(y): v for y, v in opt["independent_places_by_year"].items()}
    assert set(floor) == set(placed)
    for y in floor:  # no plan goes below it
        assert placed[y] >= floor[y] - 1e-6, y
    base = min(floor)  # before any decision every independent place is one already made
    assert floor[base] == pytest.approx(placed[base])
    # the warning: the worst year's floor above the 1% cap, in places
    row = next(
        r
        for r in opt["binding_policy_limits"]
        if r["constraint"] == "share_independent" and str(r["year"]) == "2026"
    )
    total = placed[2026] / row["value"]
    expected = floor[2026] - 0.01 * total
    line = next(x for x in stderr.splitlines() if "max_independent_share" in x)
    assert f"{expected:,.0f} places of them in 2026 no plan can move" in line
    assert "the rest breached where keeping to it cost more than its penalty" in line
    # a hard cap leaves those entrants unmet instead, so it makes no such claim
    hard = {**opt, "limit_modes": {**opt["limit_modes"], "max_independent_share": "hard"}}
    (w,) = [w for w in limit_warnings(hard) if w.kind == "max_independent_share_breached"]
    assert "no plan can move" not in w.message
