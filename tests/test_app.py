"""The Streamlit app (acceptance of issue 7) driven headless with streamlit.testing.v1.AppTest.

Runs use a short horizon and 20 Monte Carlo paths (SENDPLAN_APP_HORIZON / SENDPLAN_APP_PATHS set
the levers' starting values) so each test takes seconds; users start from the scenario's own values.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml
from streamlit.testing.v1 import AppTest

from model import charts, reports
from model.cli import main as cli_main
from model.engine import run_scenario
from model.io import MAX_FILE_BYTES, load_scenario, load_scenario_text

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 240
HORIZON = 4
PATHS = 20
CARD_LABELS = (
    "EHCPs, January",
    "Cumulative deficit, March",
    "Saving of the optimised plan",
    "Chance of meeting the trajectory",
)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("SENDPLAN_APP_HORIZON", str(HORIZON))
    monkeypatch.setenv("SENDPLAN_APP_PATHS", str(PATHS))
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def _run(at: AppTest) -> AppTest:
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _tables_from(folder: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_csv(p) for p in folder.glob("*.csv")}


def _same(a: object, b: object) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-6)
    return a == b


# --------------------------------------------------------------------------- runs the default


def test_app_runs_the_default_without_exceptions(app: AppTest) -> None:
    at = _run(app)
    _no_errors(at)
    labels = [m.label for m in at.metric]
    for expected in CARD_LABELS:
        assert any(lab.startswith(expected) for lab in labels), (expected, labels)
    assert at.metric[0].label == f"EHCPs, January {2024 + HORIZON}"
    # The cards show the run's headline figures (model.reports), formatted for people.
    h = at.session_state["headline"]
    assert at.metric[0].value == f"{h['plans_horizon']:,.0f}"
    assert h["plans_base"] == 8873  # the January 2024 SEN2 count the Devon default starts from
    assert h["plans_horizon"] > h["plans_base"]  # 10% growth in the new-plan rate
    variant = "optimised" if h["cumulative_deficit_horizon_optimised_gbp"] else "unmitigated"
    deficit = h[f"cumulative_deficit_horizon_{variant}_gbp"]
    assert at.metric[1].value == f"£{deficit / 1e6:,.1f}m"
    # The run is the embedded default with exactly the two start-up edits, nothing else.
    yaml_text = at.session_state["scenario_yaml"]
    data = yaml.safe_load(yaml_text)
    base = load_scenario(None)
    assert data["meta"]["horizon_years"] == HORIZON and data["run"]["paths"] == PATHS
    data["meta"]["horizon_years"] = base.scenario.meta.horizon_years
    data["run"]["paths"] = base.scenario.run.paths
    assert data == base.resolved
    # Every view either draws or says why not (an info note), never a blank.
    assert len(at.tabs) == 9
    assert at.download_button(key="dl_yaml").label.startswith("Scenario YAML")
    assert any(c.value.strip() == yaml_text.strip() for c in at.code)


# --------------------------------------------------------------------------- scenario choice


def test_a_scenario_file_resets_the_levers_to_its_values(app: AppTest) -> None:
    at = _run(app)
    at.radio(key="source").set_value("A file in scenarios/")
    at.run(timeout=TIMEOUT)
    at.selectbox(key="scenario_file").set_value("special_schools_delayed.yaml")
    _run(at)
    _no_errors(at)
    assert at.number_input(key="lv_delay_Special school Cranbrook").value == 2
    data = yaml.safe_load(at.session_state["scenario_yaml"])
    assert data["meta"]["name"] == "Devon - special schools delayed two more years"
    assert data["capacity"]["delays"] == {
        "Special school Tavistock/Ivybridge": 2,
        "Special school Cranbrook": 2,
    }


def _upload(app: AppTest, name: str, content: bytes) -> AppTest:
    at = _run(app)
    at.radio(key="source").set_value("Upload a YAML file")
    at.run(timeout=TIMEOUT)
    assert "Upload a scenario" in at.info[0].value
    at.file_uploader(key="upload").set_value((name, content, "application/x-yaml"))
    return _run(at)


def test_a_bad_upload_shows_the_validation_lines_not_a_traceback(app: AppTest, devon_dict) -> None:
    devon_dict["demand"]["grwoth"] = devon_dict["demand"].pop("growth")
    devon_dict["meta"]["horizon_years"] = 99
    at = _upload(app, "bad.yaml", yaml.safe_dump(devon_dict).encode())
    assert len(at.error) == 1
    msg = at.error[0].value
    assert "bad.yaml: demand.grwoth: unknown key (did you mean 'growth'?)" in msg
    assert "bad.yaml: meta.horizon_years: Input should be less than or equal to 30 (got 99)" in msg
    assert "2 problems" in msg and "Traceback" not in msg
    assert not at.metric  # nothing ran


def test_an_upload_that_is_not_yaml_is_refused_in_one_line(app: AppTest) -> None:
    at = _upload(app, "broken.yaml", b"meta: {name: [unclosed\n")
    assert len(at.error) == 1
    assert "broken.yaml: not valid YAML" in at.error[0].value
    at.file_uploader(key="upload").set_value(("binary.yaml", b"\xff\xfe\x00bad", "text/yaml"))
    _run(at)
    assert "binary.yaml: cannot read file as UTF-8 text" in at.error[0].value
    big = b"# padding\n" * (MAX_FILE_BYTES // 10 + 1)
    at.file_uploader(key="upload").set_value(("big.yaml", big, "text/yaml"))
    _run(at)
    assert "big.yaml: file is larger than 5 MB" in at.error[0].value


def test_a_good_upload_extending_the_default_runs(app: AppTest) -> None:
    text = "extends: embedded:devon\nmeta: {name: Uploaded growth test}\ndemand: {growth: 0.14}\n"
    at = _upload(app, "growth.yaml", text.encode())
    _no_errors(at)
    data = yaml.safe_load(at.session_state["scenario_yaml"])
    assert data["meta"]["name"] == "Uploaded growth test"
    assert data["demand"]["growth"] == 0.14
    assert "extends" not in data  # the download is the resolved mapping: it stands alone


# --------------------------------------------------------------------------- levers


def test_levers_edit_the_scenario_and_list_the_edits(app: AppTest) -> None:
    at = _run(app)
    at.slider(key="lv_growth").set_value(14.0)
    at.number_input(key="lv_delay_Special school Cranbrook").set_value(2)
    at.checkbox(key="lv_cap_on").check()
    _run(at)
    _no_errors(at)
    data = yaml.safe_load(at.session_state["scenario_yaml"])
    assert data["demand"]["growth"] == pytest.approx(0.14)
    assert data["capacity"]["delays"] == {"Special school Cranbrook": 2}
    assert data["policy"]["max_independent_share"] == pytest.approx(0.10)
    scn = load_scenario_text(at.session_state["scenario_yaml"], "x.yaml").scenario
    cran = next(p for p in scn.capacity.pipeline if p.name == "Special school Cranbrook")
    assert scn.capacity.open_year(cran) == 2029
    edits = next(c.value for c in at.code if c.value.startswith("capacity.delays"))
    assert "demand.growth: 0.1 -> 0.14" in edits


def test_resource_base_lever_changes_the_optimised_cost(app: AppTest) -> None:
    at = _run(app)
    before = dict(at.session_state["headline"])
    assert before["solver_status"] == "optimal"
    at.number_input(key="lv_rb_places_exeter").set_value(48.0)  # opens in the first projected year
    _run(at)
    _no_errors(at)
    after = at.session_state["headline"]
    data = yaml.safe_load(at.session_state["scenario_yaml"])
    added = data["capacity"]["pipeline"][-1]
    assert (added["setting"], added["locality"], added["places"], added["open_year"]) == (
        "resource_base",
        "exeter",
        48.0,
        2025,
    )
    # 48 committed places cost the LP nothing to open, so its optimum can only improve; Devon's
    # resource bases are full, so it strictly does, and the plan needs fewer new places.
    assert after["objective_gbp"] < before["objective_gbp"] - 1e5
    assert after["total_cost_optimised_gbp"] != pytest.approx(before["total_cost_optimised_gbp"])
    assert after["places_built"] < before["places_built"]
    # Demand is untouched by a capacity lever.
    assert after["plans_horizon"] == before["plans_horizon"]


def test_only_demand_levers_rerun_the_demand_stage(app: AppTest, monkeypatch) -> None:
    import model.demand

    calls: list[float] = []
    real = model.demand.run_demand

    def counting(scn, *args, **kwargs):
        calls.append(scn.demand.growth)
        return real(scn, *args, **kwargs)

    monkeypatch.setattr(model.demand, "run_demand", counting)
    at = _run(app)
    at.slider(key="lv_growth").set_value(13.5)  # a growth no other test uses: a cache miss
    _run(at)
    assert calls[-1] == pytest.approx(0.135)
    n = len(calls)
    before = dict(at.session_state["headline"])
    at.number_input(key="lv_cost_special").set_value(30000.0)
    at.number_input(key="lv_delay_Special school Tavistock/Ivybridge").set_value(3)
    _run(at)
    _no_errors(at)
    assert len(calls) == n  # costs and capacity re-run placements, the LP and finance only
    after = at.session_state["headline"]
    assert after["plans_horizon"] == before["plans_horizon"]
    assert after["total_cost_unmitigated_gbp"] > before["total_cost_unmitigated_gbp"]
    at.slider(key="lv_growth").set_value(13.0)
    _run(at)
    assert len(calls) == n + 1 and calls[-1] == pytest.approx(0.13)


# --------------------------------------------------------------------------- downloads


@pytest.mark.slow
def test_downloaded_yaml_reruns_via_the_cli_to_the_same_headline(app: AppTest, tmp_path) -> None:
    at = _run(app)
    at.slider(key="lv_growth").set_value(12.0)
    at.number_input(key="lv_cost_independent").set_value(70000.0)
    _run(at)
    _no_errors(at)
    yaml_text = at.session_state["scenario_yaml"]
    assert any(
        c.value.strip() == yaml_text.strip() for c in at.code
    )  # the YAML shown is the YAML downloaded
    f = tmp_path / "from_app.yaml"
    f.write_text(yaml_text, encoding="utf-8")
    out = tmp_path / "out"
    assert cli_main(["run", str(f), "--out", str(out)]) == 0
    folder = out / "from-app"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["scenario_sha256"] == at.session_state["scenario_sha256"]
    assert summary["paths"] == PATHS and summary["horizon_years"] == HORIZON
    cli = reports.headline_figures(summary, _tables_from(folder))
    shown = at.session_state["headline"]
    differing = {k: (shown[k], cli[k]) for k in shown if not _same(shown[k], cli[k])}
    assert not differing


# --------------------------------------------------------------------------- compare


def test_pinning_compares_scenarios_side_by_side(app: AppTest) -> None:
    at = _run(app)
    at.text_input(key="pin_label").set_value("growth 10%")
    at.button(key="pin").click()
    _run(at)
    at.slider(key="lv_growth").set_value(14.0)
    _run(at)
    at.text_input(key="pin_label").set_value("growth 14%")
    at.button(key="pin").click()
    _run(at)
    _no_errors(at)
    pins = at.session_state["pins"]
    assert [p["label"] for p in pins] == ["growth 10%", "growth 14%"]
    table = next(
        df.value for df in at.dataframe if list(df.value.columns) == ["growth 10%", "growth 14%"]
    )
    for label in ("EHCPs at the horizon (P50)", reports.HEADLINE["saving_gbp"][0]):
        assert label in table.index
    # The pinned figures are the runs' own: higher growth, more plans and a bigger deficit.
    h10 = reports.headline_figures(pins[0]["summary"], pins[0]["tables"])
    h14 = reports.headline_figures(pins[1]["summary"], pins[1]["tables"])
    assert h14["plans_horizon"] > h10["plans_horizon"]
    assert (
        h14["cumulative_deficit_horizon_unmitigated_gbp"]
        > h10["cumulative_deficit_horizon_unmitigated_gbp"]
    )
    assert table.loc["EHCPs at the horizon (P50)", "growth 14%"] == f"{h14['plans_horizon']:,.0f}"
    saving = table.loc[reports.HEADLINE["saving_gbp"][0], "growth 10%"]
    assert saving == f"£{h10['saving_gbp'] / 1e6:,.1f}m"
    # Without a label a pin is named after the scenario and its edits.
    at.text_input(key="pin_label").set_value("")
    at.button(key="pin").click()
    _run(at)
    assert at.session_state["pins"][-1]["label"] == (
        f"Devon (illustrative default): growth=0.14, horizon_years={HORIZON}, paths={PATHS}"
    )
    at.button(key="unpin_all").click()
    _run(at)
    assert at.session_state["pins"] == []


# --------------------------------------------------------------------------- the app's chart


def test_build_locality_map_places_builds_at_their_locality() -> None:
    locs = pd.DataFrame(
        [
            {"id": "exeter", "name": "Exeter", "lat": 50.72, "lon": -3.53},
            {"id": "torridge", "name": "Torridge", "lat": 50.95, "lon": -4.21},
            {"id": "nowhere", "name": "Nowhere", "lat": None, "lon": None},
        ]
    )
    builds = pd.DataFrame(
        {
            "year_decided": [2025, 2026, 2025, 2025],
            "year_open": [2026, 2027, 2028, 2026],
            "provider_locality": ["exeter", "exeter", "exeter", "torridge"],
            "setting": ["resource_base", "resource_base", "special", "resource_base"],
            "places": [12.0, 24.0, 150.0, 0.0],
            "capital_cost_gbp": [1.0, 1.0, 1.0, 0.0],
        }
    )
    fig = charts.build_locality_map(builds, locs)
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["locality"].text) == ["Exeter", "Torridge"]  # no coordinates: left out
    rb = by_name["resource_base"]
    assert [row[1] for row in rb.customdata] == [36.0]  # 12 + 24 summed; zero-place row dropped
    assert rb.y[0] == pytest.approx(50.72)
    # Marker area grows with places: the 150-place special school is the largest circle.
    assert by_name["special"].marker.size[0] > rb.marker.size[0]
    assert fig.layout.yaxis.scaleratio == pytest.approx(1 / math.cos(math.radians(50.835)))
    empty = charts.build_locality_map(builds.iloc[0:0], locs)
    assert [t.name for t in empty.data] == ["locality"]
    with pytest.raises(charts.ChartDataError, match="no coordinates"):
        charts.build_locality_map(None, locs.iloc[2:])


# --------------------------------------------------------------------------- download payloads


def _import_app():
    spec = importlib.util.spec_from_file_location("sendplan_app", APP)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)  # defines the page's functions; main() runs only as __main__
    return module


def test_csv_zip_and_xlsx_downloads_hold_the_run(tmp_path) -> None:
    app_module = _import_app()
    resolved = load_scenario(None, ["meta.horizon_years=3", "run.paths=1"])
    res = run_scenario(resolved)
    with zipfile.ZipFile(io.BytesIO(app_module._csv_zip(res))) as zf:
        names = set(zf.namelist())
        assert {f"devon/{t}.csv" for t in res.tables} <= names
        assert {"devon/summary.json", "devon/scenario.resolved.yaml"} <= names
        fin = pd.read_csv(zf.open("devon/finance.csv"))
        summary = json.loads(zf.read("devon/summary.json"))
    assert summary["scenario_sha256"] == resolved.sha256
    pd.testing.assert_frame_equal(fin, res.tables["finance"], check_dtype=False, check_exact=False)
    xlsx = app_module._xlsx(res)
    assert xlsx[:2] == b"PK"
    wb = openpyxl.load_workbook(io.BytesIO(xlsx), read_only=True)
    assert "Summary" in wb.sheetnames and "finance" in {s.lower() for s in wb.sheetnames}


def test_process_view_and_a_backlog_clearance_lever(app: AppTest) -> None:
    """The statutory-process tab shows its KPIs; the clearance lever writes process.backlog_clearance."""
    at = _run(app)
    labels = [m.label for m in at.metric]
    assert "Within 20 weeks" in labels and any(lab.startswith("Plans issued") for lab in labels)
    at.number_input(key="lv_pr_clear").set_value(400.0)
    at = _run(at)
    _no_errors(at)
    data = yaml.safe_load(at.session_state["scenario_yaml"])
    plan = data["process"]["backlog_clearance"]
    assert len(plan) == 1 and plan[0]["cases"] == 400.0
