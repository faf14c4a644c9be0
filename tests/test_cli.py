"""The `sendplan` CLI contract: exit codes, output folder, summary.json, atomic writes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model import engine
from model.cli import main
from model.io import load_scenario


def test_console_script_runs_default(tmp_path: Path) -> None:
    exe = shutil.which("sendplan") or str(Path(sys.executable).with_name("sendplan"))
    proc = subprocess.run(
        [exe, "run", "--out", str(tmp_path), "--paths", "20"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "devon" / "summary.json").read_text())
    assert summary["scenario"] == "Devon (illustrative default)"
    assert summary["scenario_sha256"] == load_scenario(None).sha256
    assert summary["seed"] == 20250331 and summary["paths"] == 20
    assert summary["solver"] == "highs" and summary["status"] == "optimal"
    assert summary["objective_gbp"] == summary["optimisation"]["objective_gbp"] > 0
    assert summary["build_seconds"] >= 0 and summary["solve_seconds"] > 0
    assert summary["package_version"] == __import__("model").__version__
    resolved = (tmp_path / "devon" / "scenario.resolved.yaml").read_text()
    import hashlib

    assert hashlib.sha256(resolved.encode()).hexdigest() == summary["scenario_sha256"]


def test_overrides_change_hash_and_are_recorded(tmp_path: Path, capsys) -> None:
    code = main(
        ["run", "--out", str(tmp_path), "--paths", "5", "--no-reports"]
        + ["--set", "demand.growth=0.14"]
    )
    assert code == 0
    summary = json.loads((tmp_path / "devon" / "summary.json").read_text())
    assert summary["overrides"] == ["demand.growth=0.14"]
    assert summary["scenario_sha256"] == load_scenario(None, ["demand.growth=0.14"]).sha256
    assert summary["scenario_sha256"] != load_scenario(None).sha256


def test_bad_override_exits_2_without_output(tmp_path: Path, capsys) -> None:
    code = main(["run", "--out", str(tmp_path), "--set", "demand.growht=0.14"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == "embedded:devon: demand.growht: unknown key (did you mean 'growth'?)"
    assert not (tmp_path / "devon").exists()


def test_bad_arguments_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["run", "--paths", "many"])
    assert e.value.code == 2
    assert "invalid int value" in capsys.readouterr().err
    assert main(["run", "--paths", "0"]) == 2


def test_only_bad_input_creates_no_out_folder(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("meta: {nme: x}\n")
    out = tmp_path / "new" / "deeper"
    assert main(["run", str(bad), "--out", str(out)]) == 2
    assert "meta.nme: unknown key (did you mean 'name'?)" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # neither OUT nor the parent it would have made


def test_a_bad_out_folder_is_one_line_naming_out(tmp_path: Path, capsys) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["run", "--out", str(afile)]) == 2
    assert capsys.readouterr().err == (
        f"sendplan: error: --out {afile}: not a folder (a file of that name is there)\n"
    )
    assert main(["run", "--out", str(afile / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sendplan: error: --out {afile / 'sub'}: cannot create the folder")
    assert err.count("\n") == 1 and afile.read_text() == "x"


def test_no_reports_and_full_workbook_are_refused_together(tmp_path: Path, capsys) -> None:
    for order in (["--no-reports", "--full-workbook"], ["--full-workbook", "--no-reports"]):
        with pytest.raises(SystemExit) as e:
            main(["run", "--out", str(tmp_path / "o"), *order])
        assert e.value.code == 2
        assert "not allowed with argument" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_failure_while_running_exits_1_and_leaves_no_folder(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    def explode(*args, **kwargs):
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(engine, "run_scenario", explode)
    code = main(["run", "--out", str(tmp_path)])
    assert code == 1
    assert "embedded:devon: run failed: RuntimeError: solver crashed" in capsys.readouterr().err
    assert not (tmp_path / "devon").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_failure_while_writing_leaves_previous_output_intact(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    quick = ["--paths", "5", "--no-reports", "--set", "meta.horizon_years=2"]
    assert main(["run", "--out", str(tmp_path), *quick]) == 0
    before = (tmp_path / "devon" / "summary.json").read_text()

    def broken_json(path, data):
        raise OSError("disk full")

    monkeypatch.setattr(engine, "write_json", broken_json)
    assert main(["run", "--out", str(tmp_path), *quick, "--seed", "1"]) == 1
    assert (tmp_path / "devon" / "summary.json").read_text() == before


@pytest.mark.parametrize("horizon", [1, 2])
def test_a_short_horizon_planning_above_p50_runs(tmp_path: Path, horizon: int) -> None:
    """Nothing can be built within one or two years: planning for P90 still runs (no builds)."""
    code = main(
        ["run", "--out", str(tmp_path), "--paths", "10", "--no-reports"]
        + ["--set", f"meta.horizon_years={horizon}", "--set", "policy.plan_for=0.9"]
    )
    assert code == 0
    summary = json.loads((tmp_path / "devon" / "summary.json").read_text())
    assert summary["optimisation"]["places_built"] == 0
    assert summary["optimisation"]["plan_for"]["plan_for"] == 0.9


def test_full_workbook_writes_every_table_beside_the_report(tmp_path: Path) -> None:
    code = main(
        ["run", "--out", str(tmp_path), "--paths", "1", "--full-workbook"]
        + ["--set", "meta.horizon_years=2"]
    )
    assert code == 0
    folder = tmp_path / "devon"
    assert {"report.xlsx", "report.html", "tables.xlsx"} <= {p.name for p in folder.iterdir()}
