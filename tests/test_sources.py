"""The shipped SEN2 panel: published figures as DfE gives them, boundary changes, markers."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.cli import main
from model.sources import sen2

RELEASE = Path(__file__).resolve().parents[2] / "shared" / "data" / "sen2-2025"
needs_release = pytest.mark.skipif(
    not RELEASE.is_dir(),
    reason="the SEN2 release folder ../shared/data/sen2-2025 is not beside the repo",
)


def test_devon_january_counts_are_the_published_ones() -> None:
    devon = sen2.find_la("Devon")
    assert devon.code == "E10000008"
    plans = sen2.series(devon.code, "plans")
    # The release README quotes these for Devon, January 2019..2025.
    assert plans.to_dict() == {
        2019: 5162,
        2020: 6474,
        2021: 7295,
        2022: 7926,
        2023: 8400,
        2024: 8873,
        2025: 9848,
    }
    independent = sen2.series(devon.code, "plans_by_placement", "special_independent")
    assert independent[2019] == 230 and independent[2025] == 863


def test_england_is_the_sum_of_its_local_authorities() -> None:
    p = sen2.panel()
    plans = p[(p["measure"] == "plans") & (p["status"] == "published")]
    la = plans[plans["level"] == "la"].groupby("year")["value"].sum()
    england = plans[plans["level"] == "england"].set_index("year")["value"]
    # Every LA publishes its January count, so the LAs add up to England in years without a split.
    for year in (2024, 2025):
        assert la[year] == england[year]


def test_age_breakdowns_add_up_to_the_totals() -> None:
    p = sen2.panel()
    la = p[p["level"] == "la"]
    for by_age, total in (("plans_by_age", "plans"), ("new_plans_by_age", "new_plans")):
        sums = la[la["measure"] == by_age].groupby(["area_code", "year"])["value"].sum(min_count=1)
        tot = la[la["measure"] == total].set_index(["area_code", "year"])["value"]
        both = pd.concat([sums, tot], axis=1, keys=["sum", "total"]).dropna()
        assert len(both) > 250
        np.testing.assert_allclose(both["sum"], both["total"], atol=1e-6)


def test_region_total_copied_into_each_la_is_corrected() -> None:
    # The release shows Yorkshire and The Humber's 6,078 new plans of 2022 against each of its
    # LAs; the panel replaces them with each LA's own age breakdown and says so.
    sheffield = sen2.find_la("Sheffield")
    p = sen2.panel()
    row = p[
        (p["area_code"] == sheffield.code) & (p["measure"] == "new_plans") & (p["year"] == 2022)
    ]
    assert row["status"].item() == "corrected"
    ages = sen2.table(sheffield.code, "new_plans_by_age").loc[2022].sum()
    assert row["value"].item() == ages < 6078
    assert 2022 not in sen2.series(sheffield.code, "new_plans").index  # published only


def test_split_authorities_get_apportioned_history_marked_as_such() -> None:
    cumberland = sen2.find_la("Cumberland")
    westmorland = sen2.find_la("Westmorland and Furness")
    published = sen2.series(cumberland.code, "plans")
    assert list(published.index) == [2024, 2025]
    both = sen2.series(cumberland.code, "plans", published_only=False) + sen2.series(
        westmorland.code, "plans", published_only=False
    )
    cumbria_2019 = 3173  # Cumbria's published January 2019 count, split in proportion
    assert both[2019] == pytest.approx(cumbria_2019)
    las = sen2.authorities().set_index("area_name")
    assert not las.loc["Cumberland", "full_series"] and las.loc["Devon", "full_series"]
    assert las.loc["Cumberland", "first_year"] == 2024
    # Bournemouth, Christchurch and Poole and Dorset changed boundary in 2019: no comparable year.
    assert sen2.series(sen2.find_la("Dorset").code, "plans").index.min() == 2020


def test_find_la_by_code_number_and_name() -> None:
    assert sen2.find_la("e10000008").name == "Devon"
    assert sen2.find_la("878").name == "Devon"
    assert sen2.find_la("  kent ").name == "Kent"
    with pytest.raises(LookupError, match="did you mean 'Kent'"):
        sen2.find_la("Kentt")
    assert len(sen2.authorities()) == 153


@needs_release
def test_rebuild_from_the_release_gives_the_shipped_bytes(tmp_path: Path) -> None:
    out = tmp_path / "panel.csv.gz"
    assert main(["data", "build", "--release", str(RELEASE), "--out", str(out)]) == 0
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(sen2.PANEL_FILE.read_bytes())
    # the pooled priors beside it, from the same panel, are the shipped ones too
    from model.pooling import PRIOR_FILE

    assert (tmp_path / PRIOR_FILE.name).read_bytes() == PRIOR_FILE.read_bytes()


def test_markers_become_missing_values_with_their_status(tmp_path: Path) -> None:
    head = (
        "time_period,time_identifier,geographic_level,country_code,country_name,region_code,"
        "region_name,new_la_code,old_la_code,la_name,breakdown_topic,breakdown,new_ehc_plans\n"
    )
    rows = (
        "2024,Calendar year,Local authority,E92000001,England,E12000009,South West,E10000008,878,"
        "Devon,New EHC plans,New EHC plans,{v}\n"
    )
    for marker, status in (("x", "x"), ("z", "z"), ("c", "c"), ("12", "published")):
        csv = tmp_path / "newplans.csv.gz"
        csv.write_bytes(gzip.compress((head + rows.format(v=marker)).encode()))
        df = sen2._read(tmp_path, "newplans")
        value, st = sen2._values(df["new_ehc_plans"])
        assert st[0] == status
        assert (value[0] == 12) if status == "published" else np.isnan(value[0])


def test_bad_release_folder_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "build", "--release", str(tmp_path), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{tmp_path}: not a readable SEN2 release folder")
    assert not (tmp_path / "p").exists()
