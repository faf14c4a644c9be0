"""Batch runs: inputs, failure isolation, exit codes, parallel and dask reproducibility, sweeps."""

from __future__ import annotations

import json
import multiprocessing
import os
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import yaml

from model import batch, engine
from model.batch import BAD_INPUT, FAILED, OK, Outcome, ScenarioSpec
from model.cli import main
from model.io import ScenarioError

DATA = Path(__file__).parent / "data"
SMALL = [str(DATA / "batch" / "small_a.yaml"), str(DATA / "batch" / "small_b.yaml")]
BROKEN = str(DATA / "broken_growth.yaml")


def csv_bytes(out: Path) -> dict[str, bytes]:
    """Every CSV under a batch output folder, by relative path."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.csv"))}


# --------------------------------------------------------------------------- inputs


def test_inputs_from_files_globs_and_folders(tmp_path: Path) -> None:
    (tmp_path / "set").mkdir()
    for name in ("b.yaml", "a.yml", "notes.txt"):
        (tmp_path / "set" / name).write_text("x: 1\n")
    (tmp_path / "empty").mkdir()
    files, bad = batch.expand_inputs(
        [
            str(tmp_path / "set"),
            str(tmp_path / "set" / "*.yaml"),  # b.yaml again: run once
            str(tmp_path / "nothing-*.yaml"),
            str(tmp_path / "empty"),
            str(tmp_path / "missing.yaml"),  # kept: loading names the problem
            None,
        ]
    )
    assert files == [
        str(tmp_path / "set" / "a.yml"),
        str(tmp_path / "set" / "b.yaml"),
        str(tmp_path / "missing.yaml"),
        None,
    ]
    assert [o.problems for o in bad] == [
        [f"{tmp_path / 'nothing-*.yaml'}: no file matches this pattern"],
        [
            f"{tmp_path / 'empty'}: folder holds no scenario files (*.yaml, *.yml): {tmp_path / 'empty'}"
        ],
    ]


def test_folder_names_are_unique_when_stems_collide() -> None:
    specs = batch.specs_for_files(
        ["x/base.yaml", "y/base.yaml", "z/Base.yml", None], ["run.paths=5"]
    )
    assert [s.slug for s in specs] == ["base", "base-2", "base-3", "devon"]
    assert all(s.overrides == ("run.paths=5",) for s in specs)


def test_grid_values_split_on_top_level_commas_only() -> None:
    assert batch.split_values("0.08, 0.10,0.12") == ["0.08", "0.10", "0.12"]
    assert batch.split_values("[1, 2],{a: 1, b: 2},'x,y'") == ["[1, 2]", "{a: 1, b: 2}", "'x,y'"]
    grid = batch.parse_grid(["demand.growth=0.08,0.10", "policy.integer_builds=true,false"])
    assert grid == [
        ("demand.growth", [("0.08", 0.08), ("0.10", 0.1)]),
        ("policy.integer_builds", [("true", True), ("false", False)]),
    ]
    for bad in (["growth"], ["demand.growth=0.1,,0.2"], ["a.b=1", "a.b=2"]):
        with pytest.raises(ScenarioError):
            batch.parse_grid(bad)


def test_sweep_is_the_cartesian_product_named_by_values() -> None:
    grid = batch.parse_grid(
        ["demand.growth=0.08,0.10,0.12", "policy.max_independent_share=0.05,0.10"]
    )
    specs = batch.sweep_specs("scenarios/base.yaml", grid, ["run.paths=20", "demand.growth=0.5"])
    assert len(specs) == 6
    assert specs[0].slug == "base__demand.growth=0.08__policy.max_independent_share=0.05"
    assert specs[-1].slug == "base__demand.growth=0.12__policy.max_independent_share=0.10"
    assert len({s.slug for s in specs}) == 6
    # Swept values are applied after --set, so they win over an override of the same key.
    assert specs[1].overrides == (
        "run.paths=20",
        "demand.growth=0.5",
        "demand.growth=0.08",
        "policy.max_independent_share=0.10",
    )
    assert specs[1].swept == (("demand.growth", 0.08), ("policy.max_independent_share", 0.1))
    assert specs[1].label == (
        "scenarios/base.yaml [demand.growth=0.08, policy.max_independent_share=0.10]"
    )


def test_sweep_folder_names_are_file_system_safe() -> None:
    grid = batch.parse_grid(["meta.name='a/b: c?*',x", "demand.backlog=[{year: 2025, plans: 350}]"])
    specs = batch.sweep_specs(None, grid)
    for s in specs:
        assert s.slug.startswith("devon__")
        assert all(ch.isalnum() or ch in "._=,+-" for ch in s.slug), s.slug
    long = batch.sweep_specs(None, batch.parse_grid([f"meta.name={'n' * 400},{'n' * 401}"]))
    assert all(len(s.slug.encode()) <= batch.MAX_SLUG_BYTES for s in long)
    assert long[0].slug != long[1].slug


def test_exit_code_contract() -> None:
    def result(*statuses: str) -> batch.BatchResult:
        outs = [Outcome(ScenarioSpec(f"{i}.yaml"), s) for i, s in enumerate(statuses)]
        return batch.BatchResult(Path("."), outs, pd.DataFrame())

    assert result(OK, OK).exit_code == 0
    assert result(OK, BAD_INPUT).exit_code == 2
    assert result(OK, FAILED, BAD_INPUT).exit_code == 1
    assert result(FAILED).exit_code == 1


def test_comparison_rows_follow_input_order_and_skip_bad_input() -> None:
    outs = [
        Outcome(
            ScenarioSpec("b.yaml", slug="b"), FAILED, row={"scenario": "B"}, error="ValueError: x"
        ),
        Outcome(ScenarioSpec("bad.yaml", slug="bad"), BAD_INPUT, error="bad"),
        Outcome(
            ScenarioSpec("a.yaml", slug="a", swept=(("demand.growth", 0.1),)),
            OK,
            row={"scenario": "A", "slug": "a", "plans_horizon": 12.5},
        ),  # fmt: skip
    ]
    cmp = batch.comparison_table(outs, ["demand.growth"])
    assert cmp["slug"].tolist() == ["b", "a"]
    assert cmp["status"].tolist() == ["failed", "ok"]
    assert cmp["error"].tolist()[0] == "ValueError: x" and pd.isna(cmp["error"].tolist()[1])
    assert cmp["demand.growth"].tolist()[1] == 0.1
    assert list(cmp.columns[:6]) == [
        "scenario",
        "slug",
        "status",
        "error",
        "source",
        "demand.growth",
    ]


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """Two small scenarios (a folder) and one broken file, run serially through the CLI."""
    out = tmp_path_factory.mktemp("serial")
    code = main(["run", str(DATA / "batch"), BROKEN, "--out", str(out), "--jobs", "1"])
    return out, code


@pytest.mark.slow
def test_one_broken_file_does_not_stop_the_batch(serial_run: tuple[Path, int], capsys) -> None:
    out, code = serial_run
    assert code == 2  # the only failure is bad input
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == ["small-a", "small-b"]
    for f in folders:
        files = {p.name for p in (out / f).iterdir()}
        assert {"scenario.resolved.yaml", "summary.json", "report.xlsx", "report.html"} <= files
        summary = json.loads((out / f / "summary.json").read_text())
        assert "report_warnings" not in summary
        assert {f"{table}.csv" for table in engine.TABLE_ORDER} <= files  # every contract table
        wb = openpyxl.load_workbook(out / f / "report.xlsx", read_only=True)
        # Summaries for people; every row of every table is in the CSV files beside it.
        assert wb.sheetnames == [
            "Summary",
            "Charts",
            "Finance",
            "Plans",
            "Placements",
            "Sufficiency gap",
            "Value of a place",
            "Build plan",
            "Saving by cause",
            "Costs",
            "chart_data",
        ]
        wb.close()
        with zipfile.ZipFile(out / f / "report.xlsx") as z:  # deficit + two placement-mix charts
            assert len([n for n in z.namelist() if n.startswith("xl/charts/chart")]) == 3
        html = (out / f / "report.html").read_text()
        assert '<script src="http' not in html and html.count("Plotly.newPlot") == 5
    cmp = pd.read_csv(out / "comparison.csv")
    assert cmp["slug"].tolist() == ["small-a", "small-b"]
    assert cmp["scenario"].tolist() == ["Small A (growth 8%)", "Small B (growth 12%)"]
    assert cmp["status"].tolist() == ["ok", "ok"]
    assert (cmp["paths"] == 20).all() and (cmp["horizon_year"] == 2029).all()
    assert (out / "comparison.xlsx").exists() and (out / "comparison.html").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_failure_messages_name_the_file(tmp_path: Path, capsys) -> None:
    code = main(
        [
            "run",
            SMALL[0],
            BROKEN,
            str(tmp_path / "none-*.yaml"),
            "--out",
            str(tmp_path),
            "--no-reports",
        ]
    )
    captured = capsys.readouterr()
    assert code == 2
    # the one scenario that ran may add warnings about its results (model.alerts); the problems
    # are one line each, naming the file
    problems = [line for line in captured.err.splitlines() if ": warning: " not in line]
    assert problems == [
        f"{tmp_path / 'none-*.yaml'}: no file matches this pattern",
        f"{BROKEN}: demand.growht: unknown key (did you mean 'growth'?)",
    ]
    assert f"{SMALL[0]}: wrote {tmp_path / 'small-a'}" in captured.out
    assert "3 scenarios: 1 ok, 0 failed, 2 bad input" in captured.out
    assert "━" not in captured.err  # no progress bar when output is not a terminal


def test_error_while_running_exits_1_and_others_complete(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    real = engine.run_scenario

    def fragile(resolved, **kw):
        if resolved.scenario.meta.name.startswith("Small B"):
            raise ValueError("LP infeasible\nsecond line")
        return real(resolved, **kw)

    monkeypatch.setattr(engine, "run_scenario", fragile)
    code = main(["run", *SMALL, BROKEN, "--out", str(tmp_path), "--no-reports"])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert f"{SMALL[1]}: run failed: ValueError: LP infeasible | second line" in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["small-a"]
    cmp = pd.read_csv(tmp_path / "comparison.csv")
    assert cmp["status"].tolist() == ["ok", "failed"]
    assert cmp["error"].tolist()[1] == "ValueError: LP infeasible | second line"
    assert cmp["scenario"].tolist()[1] == "Small B (growth 12%)"


@pytest.mark.slow
def test_jobs_2_gives_the_same_csvs_as_jobs_1(serial_run: tuple[Path, int], tmp_path: Path) -> None:
    out1, code1 = serial_run
    # Reports are not CSVs: leave them out to keep the test quick.
    code2 = main(
        ["run", str(DATA / "batch"), BROKEN, "--out", str(tmp_path), "--jobs", "2", "--no-reports"]
    )
    assert code2 == code1 == 2
    one, two = csv_bytes(out1), csv_bytes(tmp_path)
    assert sorted(one) == sorted(two) and "comparison.csv" in one
    for name in one:
        assert one[name] == two[name], name


def test_dask_local_cluster_matches_the_local_run(
    serial_run: tuple[Path, int], tmp_path: Path
) -> None:
    from distributed import LocalCluster

    out1, _ = serial_run
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        result = batch.run_batch(
            SMALL, tmp_path, scheduler=cluster.scheduler_address, reports=False, progress=False
        )
    assert result.exit_code == 0 and [o.status for o in result.outcomes] == [OK, OK]
    one = csv_bytes(out1)
    two = csv_bytes(tmp_path)
    assert sorted(two) == sorted(one)
    for name in one:
        assert one[name] == two[name], name


def test_a_dying_worker_fails_only_its_scenario(tmp_path: Path, monkeypatch, write_yaml) -> None:
    # Fork (instead of forkserver) so the workers inherit the patched engine below.
    monkeypatch.setattr(batch, "_pool_context", lambda: multiprocessing.get_context("fork"))
    real = engine.run_scenario

    def crashing(resolved, **kw):
        if resolved.scenario.meta.name == "Crash":
            os._exit(3)  # as if killed for memory: no exception, the process is gone
        return real(resolved, **kw)

    monkeypatch.setattr(engine, "run_scenario", crashing)
    crash = write_yaml(
        {"extends": "embedded:devon", "meta": {"name": "Crash", "horizon_years": 5}}, "crash.yaml"
    )
    result = batch.run_batch(
        [SMALL[0], str(crash), SMALL[1]], tmp_path / "out", jobs=2, reports=False, progress=False
    )
    assert [o.status for o in result.outcomes] == [OK, FAILED, OK]
    assert "worker process died" in result.outcomes[1].error
    assert result.exit_code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir()) == [
        "small-a",
        "small-b",
    ]


def test_sweep_runs_the_product_with_swept_columns(tmp_path: Path, capsys) -> None:
    code = main(
        [
            "sweep",
            str(DATA / "small_base.yaml"),
            "--grid",
            "demand.growth=0.08,0.12",
            "--grid",
            "policy.max_independent_share=0.05,0.10",
            "--out",
            str(tmp_path),
            "--no-reports",
            "--paths",
            "5",
        ]
    )
    assert code == 0
    cmp = pd.read_csv(tmp_path / "comparison.csv")
    assert (cmp["paths"] == 5).all() and (cmp["status"] == "ok").all()
    assert list(cmp.columns[5:7]) == ["demand.growth", "policy.max_independent_share"]
    assert list(zip(cmp["demand.growth"], cmp["policy.max_independent_share"], strict=True)) == [
        (0.08, 0.05),
        (0.08, 0.10),
        (0.12, 0.05),
        (0.12, 0.10),
    ]
    for slug, g, share in zip(
        cmp["slug"], cmp["demand.growth"], cmp["policy.max_independent_share"], strict=True
    ):
        resolved = yaml.safe_load((tmp_path / slug / "scenario.resolved.yaml").read_text())
        assert (
            resolved["demand"]["growth"] == g
            and resolved["policy"]["max_independent_share"] == share
        )
        assert resolved["run"]["paths"] == 20
    assert (
        cmp["slug"].tolist()[0]
        == "small-base__demand.growth=0.08__policy.max_independent_share=0.05"
    )
    assert len(set(cmp["scenario_sha256"])) == 4


def test_sweep_bad_values_and_bad_grid(tmp_path: Path, capsys) -> None:
    code = main(["sweep", str(DATA / "small_base.yaml"), "--grid", "demand.growth=0.1,5",
                 "--out", str(tmp_path), "--no-reports"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "demand.growth" in err and "[demand.growth=5]" in err
    assert len(pd.read_csv(tmp_path / "comparison.csv")) == 1
    assert main(["sweep", "--grid", "demand.growth"]) == 2
    assert "is not key.path=v1,v2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["sweep", str(DATA / "small_base.yaml")])  # --grid is required
    assert e.value.code == 2


def test_parquet_tables_match_the_csvs(serial_run: tuple[Path, int], tmp_path: Path) -> None:
    out1, _ = serial_run
    assert (
        main(["run", SMALL[0], "--out", str(tmp_path), "--format", "parquet", "--no-reports"]) == 0
    )
    folder = tmp_path / "small-a"
    assert not list(folder.glob("*.csv"))
    csvs = sorted((out1 / "small-a").glob("*.csv"))
    assert len(csvs) == len(engine.TABLE_ORDER)
    assert sorted(p.stem for p in folder.glob("*.parquet")) == [p.stem for p in csvs]
    for p in csvs:
        pd.testing.assert_frame_equal(
            pd.read_parquet(folder / f"{p.stem}.parquet"), pd.read_csv(p), check_dtype=False
        )


def test_progress_bar_when_asked(tmp_path: Path, capsys) -> None:
    result = batch.run_batch([SMALL[0]], tmp_path, reports=False, progress=True)
    err = capsys.readouterr().err
    assert result.exit_code == 0
    assert "scenarios" in err and "1/1" in err and "failed 0" in err


def test_bad_jobs_and_unreachable_scheduler_exit_2(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(batch, "SCHEDULER_TIMEOUT", "1s")
    assert main(["run", SMALL[0], "--jobs", "-1", "--out", str(tmp_path)]) == 2
    assert "--jobs must be at least 0" in capsys.readouterr().err
    code = main(["run", SMALL[0], "--scheduler", "tcp://127.0.0.1:9", "--out", str(tmp_path)])
    assert code == 2
    assert "cannot connect to the dask scheduler at 'tcp://127.0.0.1:9'" in capsys.readouterr().err
    assert main(["run", SMALL[0], "--scheduler", "no scheduler here", "--out", str(tmp_path)]) == 2
    assert "cannot connect to the dask scheduler" in capsys.readouterr().err


def test_the_progress_bar_shows_what_a_scenario_is_doing() -> None:
    """Stage reports reach the bar: from this process directly (serial runs), and from worker
    processes through a queue (process pools), e.g. the solver's step on a long integer solve."""
    import time as _time

    from model.stages import report_stage

    def shown(bar: batch._Progress) -> str:
        return bar._progress.tasks[0].fields["stage"]

    with batch._Progress(2, 1, True) as bar:
        with batch._stage_feed(bar, "serial") as q:
            assert q is None
            report_stage("devon: LP relaxation of the build plan")
        assert shown(bar) == "devon: LP relaxation of the build plan"
        with batch._stage_feed(bar, "pool") as q:
            send = batch._stage_sender(q, "faster.yaml")
            send("branch and bound from the rounded plan")
            deadline = _time.monotonic() + 10
            while shown(bar).startswith("devon") and _time.monotonic() < deadline:
                _time.sleep(0.05)
        assert shown(bar) == "faster.yaml: branch and bound from the rounded plan"
    with batch._Progress(2, 1, False) as quiet, batch._stage_feed(quiet, "pool") as q:
        assert q is None  # no bar, no queue


# --------------------------------------------------------------------------- nothing clobbered


FAST = ["--paths", "2", "--no-reports", "--set", "meta.horizon_years=2"]


def test_a_batch_never_clobbers_a_fuller_comparison(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["run", *SMALL, "--out", str(out), *FAST]) == 0
    before = {
        n: (out / n).read_bytes() for n in ("comparison.csv", "comparison.xlsx", "comparison.html")
    }
    # nothing ran: a missing file, a bad --set
    assert main(["run", str(tmp_path / "nonexistent.yaml"), "--out", str(out)]) == 2
    assert main(["run", SMALL[0], "--out", str(out), "--set", "demand.growht=1"]) == 2
    # one scenario ran, but the earlier comparison has two rows
    assert main(["run", SMALL[0], "--out", str(out), *FAST]) == 0
    err = capsys.readouterr().err
    assert "comparison.csv, .xlsx and .html kept" in err and "--overwrite" in err
    assert {n: (out / n).read_bytes() for n in before} == before
    # asked for: replaced
    assert main(["run", SMALL[0], "--out", str(out), *FAST, "--overwrite"]) == 0
    assert pd.read_csv(out / "comparison.csv")["slug"].tolist() == ["small-a"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_output_folders_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert main(["run", SMALL[0], "--out", str(tmp_path), *FAST]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "small-a").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "comparison.csv").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "small-a" / "summary.json").stat().st_mode & 0o777 == 0o644


def test_a_run_removes_temporaries_left_by_a_killed_run(tmp_path: Path) -> None:
    import subprocess
    import sys

    from model.io import _host

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    stale = tmp_path / f".small-a.{_host()}-{proc.pid}.x7y8z9.tmp"
    stale.mkdir()
    (stale / "demand.csv").write_text("half a table\n")
    assert main(["run", SMALL[0], "--out", str(tmp_path), *FAST]) == 0
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "comparison.csv",
        "comparison.html",
        "comparison.xlsx",
        "small-a",
    ]


def _descendants(pid: int) -> set[int]:
    """Process ids below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    found, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            found.add(c)
            todo.append(c)
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_end_when_the_batch_is_killed(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    slow = [str(tmp_path / f"s{i}.yaml") for i in range(3)]
    for i, f in enumerate(slow):
        Path(f).write_text(f"extends: embedded:devon\nmeta: {{name: s{i}}}\nrun: {{paths: 500}}\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "model.cli",
            "run",
            *slow,
            "--jobs",
            "2",
            "--out",
            str(tmp_path / "out"),
            "--no-reports",
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while time.monotonic() < deadline and len(workers) < 3:  # fork server + two workers
        time.sleep(0.2)
        workers = {p for p in _descendants(proc.pid) if _running(p)}
    assert len(workers) >= 3, "the pool never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_running(p) for p in workers):
        time.sleep(0.2)
    left = [p for p in workers if _running(p)]
    for p in left:  # do not leave them behind if the test fails
        os.kill(p, signal.SIGKILL)
    assert not left


def _la_outcome(name: str, plans: list[float], spend: list[float], base: float) -> Outcome:
    row = {"scenario": name, "slug": name.lower(), "base_year": 2025, "horizon_year": 2035,
           "horizon_financial_year": 2034, "paths": len(plans), "seed": 1, "plans_base": base,
           "plans_horizon": float(np.median(plans)), "total_cost_unmitigated_gbp": sum(spend) / 4}  # fmt: skip
    return Outcome(
        ScenarioSpec(f"{name}.yaml", slug=name.lower()),
        OK,
        folder=name,
        row=row,
        horizon={"plans": plans, "hnb_spend_gbp": spend},
        la_name=name,
    )


def test_total_row_sums_paths_not_quantiles() -> None:
    """Two LAs whose paths move in opposite directions: the total is nearly certain, which summing
    each LA's P10 and P90 would miss."""
    up = [100.0, 110.0, 120.0, 130.0, 140.0]
    down = [140.0, 130.0, 120.0, 110.0, 100.0]
    a = _la_outcome("A", up, [1e6, 2e6, 3e6, 4e6, 5e6], 90.0)
    b = _la_outcome("B", down, [5e6, 4e6, 3e6, 2e6, 1e6], 80.0)
    table = batch.comparison_table([a, b])
    total = table[table["status"] == "total"].iloc[0]
    assert total["scenario"] == "Total of 2 LAs"
    assert total["plans_horizon"] == total["plans_horizon_p10"] == total["plans_horizon_p90"] == 240
    assert np.percentile(up, 90) + np.percentile(down, 90) > 260  # what summing P90s gives
    assert total["hnb_spend_unmitigated_gbp_p50"] == pytest.approx(6e6)
    assert total["plans_base"] == 170 and total["total_cost_unmitigated_gbp"] == pytest.approx(
        7.5e6
    )
    assert table.loc[0, "hnb_spend_unmitigated_gbp_p50"] == pytest.approx(3e6)


def test_no_total_for_variants_of_one_la_or_mismatched_runs() -> None:
    a = _la_outcome("A", [1.0, 2.0], [1.0, 2.0], 1.0)
    same = _la_outcome("A", [1.0, 2.0], [1.0, 2.0], 1.0)
    assert "total" not in set(batch.comparison_table([a, same])["status"])  # a sweep of one LA
    other = _la_outcome("B", [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 1.0)
    other.row["paths"] = 3
    assert "total" not in set(batch.comparison_table([a, other])["status"])  # paths differ
