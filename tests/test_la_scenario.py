"""`sendplan init`: every LA's scenario from SEN2, exactly as published where SEN2 publishes it."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from model.cli import main
from model.io import load_scenario
from model.scenario import PHASES, phase_of_age
from model.sources import sen2
from model.sources.la_scenario import (
    PLACEMENT_SETTING,
    SETTING_IDS,
    mapped_placements,
    placement_year,
    rake,
    scenario_for_la,
)

TOTAL_COLUMNS = {"mainstream_total", "special_total", "fe_total", "ed_elsewhere"}


def leaves(node: Any, prefix: str = "") -> list[str]:
    """Every value's key path, as the Devon provenance test walks it (rows of a list by index)."""
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in leaves(v, f"{prefix}{k}.")]
    if isinstance(node, list) and node and all(isinstance(v, dict) for v in node):
        return [p for i, v in enumerate(node) for p in leaves(v, f"{prefix}{i}.")]
    return [prefix[:-1]]


def base_year_placements(s: dict[str, Any]) -> pd.Series:
    """Plans by setting in the base year as the model places them: stock by phase x today's mix."""
    base = s["meta"]["base_year"]
    ages = np.asarray(s["demand"]["stock_age_shares"])
    by_phase = {ph: 0.0 for ph in PHASES}
    for a, share in enumerate(ages):
        by_phase[phase_of_age(a)] += share * s["demand"]["history"][base]
    out = pd.Series(0.0, index=list(SETTING_IDS))
    for ph, n in by_phase.items():
        for setting, share in s["placements"]["mix"][ph]["default"].items():
            out[setting] += n * share
    return out


def test_every_placement_column_is_mapped_once_and_totals_are_not() -> None:
    leaf_columns = set(sen2.PLACEMENT_COLUMNS) - TOTAL_COLUMNS
    # AP is mapped by its total only (its three parts would double it).
    leaf_columns -= {"ap_pru_academy", "ap_pru_free_school", "ap_pru_la_maintained"}
    assert set(PLACEMENT_SETTING) == leaf_columns
    assert set(PLACEMENT_SETTING.values()) == set(SETTING_IDS)


def test_mapped_england_caseload_adds_up_to_the_published_total() -> None:
    for year in (2019, 2025):
        mapped = mapped_placements(sen2.ENGLAND_CODE, year)
        assert mapped is not None
        assert mapped.sum() == pytest.approx(sen2.series(sen2.ENGLAND_CODE, "plans")[year])
    # Independent special 13,744 + non-maintained 3,788 + independent mainstream 3,618 (2019).
    assert mapped_placements(sen2.ENGLAND_CODE, 2019)["independent"] == 13744 + 3788 + 3618


def test_rake_matches_both_margins_and_keeps_zero_cells() -> None:
    seed = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 2.0]])
    rows, cols = np.array([6.0, 4.0]), np.array([5.0, 3.0, 2.0])
    x = rake(seed, rows, cols)
    np.testing.assert_allclose(x.sum(axis=1), rows)
    np.testing.assert_allclose(x.sum(axis=0), cols)
    assert x[0, 2] == 0.0


@pytest.mark.slow
def test_every_la_inits_validates_and_matches_the_release(tmp_path: Path, capsys) -> None:
    """`init --all` writes every LA (each validated as written); history is exactly SEN2's and
    base-year placements by setting are within 1% of the published caseload by type."""
    out = tmp_path / "las"
    assert main(["init", "--all", "--out", str(out)]) == 0
    las = sen2.authorities()
    files = sorted(out.glob("*.yaml"))
    assert len(files) == len(las) == 153
    unpublished_split = []
    panel = sen2.panel()
    plans = panel[(panel["measure"] == "plans") & (panel["status"] == "published")]
    published_by_la = {c: g.set_index("year")["value"] for c, g in plans.groupby("area_code")}
    for la in las.itertuples():
        name = la.area_name
        stem = "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())
        s = yaml.load((out / f"{stem}.yaml").read_text(), Loader=yaml.CSafeLoader)
        published = published_by_la[la.area_code]
        assert s["demand"]["history"] == {int(y): v for y, v in published.items()}, name
        base = s["meta"]["base_year"]
        assert base == max(published.index)
        pub = mapped_placements(la.area_code, base)
        if pub is None:
            unpublished_split.append(name)
            assert placement_year(la.area_code, base) != base
        else:
            got = base_year_placements(s)
            for setting in SETTING_IDS:
                assert got[setting] == pytest.approx(pub[setting], rel=0.01, abs=0.5), (
                    name,
                    setting,
                )
        prov = pd.read_csv(out / f"{stem}.provenance.csv")
        covered = re.compile("|".join(fnmatch.translate(k) for k in prov["key"]))
        missing = [p for p in leaves(s) if not covered.match(p)]
        assert missing == [], (name, missing)
    # The release does not split January 2025 by placement type for these two.
    assert sorted(unpublished_split) == ["Cambridgeshire", "North East Lincolnshire"]
    assert sen2.ATTRIBUTION in capsys.readouterr().out


def test_flows_are_the_published_ones() -> None:
    s, _ = scenario_for_la("Devon")
    rows = pd.DataFrame(s["demand"]["flow_history"])
    totals = rows[rows["age_min"].isna()]
    new = totals[totals["flow"] == "new"].set_index("year")["plans"]
    ceased = totals[totals["flow"] == "ceased"].set_index("year")["plans"]
    assert new.to_dict() == sen2.series("E10000008", "new_plans").to_dict()
    assert ceased.to_dict() == sen2.series("E10000008", "ceased_plans").to_dict()
    banded = rows[rows["age_min"].notna() & (rows["flow"] == "new") & (rows["year"] == 2024)]
    assert banded["plans"].sum() == new[2024]  # Devon publishes every age band in 2024


def test_devon_independent_special_rises_from_230_to_863() -> None:
    """The issue's own check: independent special placements as published, 2019 and 2025."""
    ind = sen2.series("E10000008", "plans_by_placement", "special_independent")
    assert (ind[2019], ind[2025]) == (230, 863)
    s, _ = scenario_for_la("Devon", base_year=2019)
    got = base_year_placements(s)
    mapped = mapped_placements("E10000008", 2019)
    assert got["independent"] == pytest.approx(mapped["independent"], rel=0.01)


def test_population_default_reproduces_published_requests() -> None:
    s, prov = scenario_for_la("Kent")
    pop = sum(s["population"]["base_0_25"].values())
    requests = sen2.series("E10000016", "requests", "received")[2024]
    assert pop * s["demand"]["requests_per_1000"] / 1000 == pytest.approx(requests, rel=1e-4)
    new = sen2.series("E10000016", "new_plans")[2024]
    assert requests * s["demand"]["conversion_rate"] == pytest.approx(new, rel=1e-4)
    note = prov.set_index("key").loc["population.base_0_25.*", "note"]
    assert "ONS" in note and "assumption" in note


def test_no_silent_zero_in_finance_inputs() -> None:
    s, prov = scenario_for_la("Leeds")
    notes = prov.set_index("key")["note"]
    for key in ("finance.opening_deficit_gbp", "finance.hnb_income_gbp"):
        assert notes[key].startswith("INPUT"), key
    assert s["finance"]["hnb_income_gbp"] > 0
    # The first year is about balanced: income = base-year placements x unit costs + other spend.
    spend = (
        sum(base_year_placements(s)[k] * v for k, v in s["costs"]["unit_cost_gbp"].items())
        + s["costs"]["other_hnb_spend_gbp"]
    )
    assert s["finance"]["hnb_income_gbp"] == pytest.approx(spend, rel=0.01)


def test_init_kent_then_run(tmp_path: Path, capsys) -> None:
    target = tmp_path / "kent.yaml"
    assert main(["init", "--la", "Kent", "--out", str(target)]) == 0
    assert (tmp_path / "kent.provenance.csv").exists()
    text = target.read_text()
    assert sen2.ATTRIBUTION in text and "# ---- placements" in text
    assert main(["validate", str(target)]) == 0
    res = tmp_path / "res"
    assert main(["run", str(target), "--paths", "2", "--no-reports", "--out", str(res)]) == 0
    comparison = pd.read_csv(res / "comparison.csv")
    assert list(comparison["status"]) == ["ok"]  # one LA: no total row
    assert comparison.loc[0, "hnb_spend_unmitigated_gbp_p10"] > 0  # Monte Carlo spend bands
    placements = pd.read_csv(res / "kent" / "placements.csv")
    base = placements[(placements["year"] == 2025) & (placements["variant"] == "unmitigated")]
    by_setting = base.groupby("setting")["places"].sum()
    pub = mapped_placements("E10000016", 2025)
    for setting in SETTING_IDS:
        assert by_setting.get(setting, 0.0) == pytest.approx(pub[setting], rel=0.01, abs=0.5)


def test_init_unknown_la_is_bad_input(tmp_path: Path, capsys) -> None:
    assert main(["init", "--la", "Kentt", "--out", str(tmp_path / "x.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["sendplan: error: unknown local authority 'Kentt' (did you mean 'Kent'?)"]
    assert not (tmp_path / "x.yaml").exists()


def test_localities_split_population_and_capacity(tmp_path: Path) -> None:
    csv = tmp_path / "districts.csv"
    csv.write_text("id,name,share,lat,lon\nnorth,North,0.4,51.1,-4.0\nsouth,South,0.6,50.4,-3.6\n")
    target = tmp_path / "devon.yaml"
    assert main(["init", "--la", "878", "--localities", str(csv), "--out", str(target)]) == 0
    s = load_scenario(target).scenario
    pop = s.population.base_0_25
    assert pop["north"] / (pop["north"] + pop["south"]) == pytest.approx(0.4, abs=1e-5)
    special = s.capacity.existing["special"]
    assert special["south"] / special["north"] == pytest.approx(1.5, rel=0.01)
    assert s.meta.la_name == "Devon"


def test_bad_localities_file_is_one_line(tmp_path: Path, capsys) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("id,name,share\nnorth,North,0.4\nsouth,South,0.5\n")
    target = tmp_path / "x.yaml"
    assert main(["init", "--la", "Devon", "--localities", str(csv), "--out", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{csv}: share: shares sum to 0.9000, not 1"]
    assert not target.exists()


def test_base_year_without_a_count_is_bad_input(tmp_path: Path, capsys) -> None:
    # Cumberland's first January on today's boundary is 2024.
    assert main(["init", "--la", "Cumberland", "--base-year", "2019"]) == 2
    assert "no published January count for base year 2019" in capsys.readouterr().err


def test_shipped_template_is_current_and_fully_sourced(tmp_path: Path) -> None:
    """embedded:template is what `sendplan init --template` writes today, with full provenance."""
    from model.io import default_scenario_path

    shipped = default_scenario_path().with_name("template.yaml")
    assert main(["init", "--template", "--out", str(tmp_path / "template.yaml")]) == 0
    assert (tmp_path / "template.yaml").read_text() == shipped.read_text()
    fresh_prov = (tmp_path / "template.provenance.csv").read_text()
    assert fresh_prov == shipped.with_name("template.provenance.csv").read_text()
    s = yaml.safe_load(shipped.read_text())
    assert s["demand"]["history"] == {} and s["demand"]["flow_history"] == []
    patterns = list(pd.read_csv(shipped.with_name("template.provenance.csv"))["key"])
    assert [p for p in leaves(s) if not any(fnmatch.fnmatchcase(p, q) for q in patterns)] == []


def test_extending_the_template_with_own_history(write_yaml) -> None:
    text = (
        "extends: embedded:template\nmeta: {name: Mine}\n"
        "demand:\n  history: {2024: 4000, 2025: 4300}\n"
        "population:\n  base_0_25: !replace {la: 150000}\n"
    )
    s = load_scenario(write_yaml(text, "mine.yaml")).scenario
    assert s.demand.history == {2024: 4000, 2025: 4300}
    assert s.population.base_0_25 == {"la": 150000}
    assert s.settings["ehe"].capacity_limited is False


def test_devon_default_matches_the_release() -> None:
    """The embedded Devon default: history and base-year placements by type as SEN2 publishes."""
    from model.io import default_scenario_path, read_yaml_file

    path = default_scenario_path()
    s = read_yaml_file(path)
    shipped_copy = Path(__file__).resolve().parents[1] / "scenarios" / "devon.yaml"
    assert shipped_copy.read_text() == path.read_text()
    published = sen2.series("E10000008", "plans")
    assert s["demand"]["history"] == {int(y): v for y, v in published.items()}
    assert s["meta"]["base_year"] == 2024
    got = base_year_placements(s)
    pub = mapped_placements("E10000008", 2024)
    for setting in SETTING_IDS:
        assert got[setting] == pytest.approx(pub[setting], rel=0.01), setting
    assert pub["independent"] == 754 + 33 + 140  # independent special, non-maintained, mainstream
    flows = pd.DataFrame(s["demand"]["flow_history"])
    new = flows[(flows["flow"] == "new") & flows["age_min"].isna()].set_index("year")["plans"]
    assert new.to_dict() == sen2.series("E10000008", "new_plans").to_dict()
