"""Backtest: baselines by hand, no leakage past the origin, recovery and coverage on a synthetic
panel generated with known parameters, and the backtest.csv contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model import backtest as bt
from model import calibrate as cb
from model import pooling
from model.cli import main
from model.demand import run_demand
from model.io import load_scenario
from model.sources import sen2

TEMPLATE = load_scenario(None).scenario


def test_baselines_by_hand() -> None:
    hist = pd.Series({2019: 100.0, 2020: 120.0, 2021: 130.0})
    f = bt.naive_forecasts(hist, [2022, 2023])
    # compound growth 1.3 over two years; least-squares line (slope 15 through the mean
    # 116.67 at 2020); last year's growth 130/120
    np.testing.assert_allclose(f["cagr"], [130 * 1.3**0.5, 130 * 1.3])
    np.testing.assert_allclose(f["linear"], [116.6666667 + 30, 116.6666667 + 45])
    np.testing.assert_allclose(f["last_growth"], [130 * 13 / 12, 130 * (13 / 12) ** 2])
    flat = bt.naive_forecasts(pd.Series({2021: 50.0}), [2022])
    assert all(v[0] == 50.0 for v in flat.values())


# --------------------------------------------------------------------------- synthetic panel

TRUE_GROWTH, TRUE_Q, STOCK_SD, NEW_CV = 0.08, 0.05, 0.015, 0.10
YEARS = list(range(2019, 2026))


def synthetic_panel(n_las: int = 36, seed: int = 7) -> tuple[pd.DataFrame, list[bt.LaData]]:
    """LAs on the steady growth path of the aggregate stock-flow model with known parameters:
    new plans grow at TRUE_GROWTH (LAs spread 0.01 about it, overdispersed by NEW_CV), a share
    TRUE_Q of the January stock leaves each year (net), and each year's net flow is off by a
    normal share STOCK_SD of the stock. Stock starts at the steady ratio (1 + g) / (g + q)."""
    rng = np.random.default_rng(seed)
    rows, items = [], []
    for i in range(n_las):
        g = TRUE_GROWTH + 0.01 * rng.standard_normal()
        n0 = float(rng.uniform(150, 900))
        new = n0 * (1 + g) ** np.arange(len(YEARS) - 1) * np.exp(NEW_CV * rng.standard_normal(6))
        stock = [n0 * (1 + g) / (g + TRUE_Q) / (1 + g)]
        for t in range(1, len(YEARS)):
            shock = STOCK_SD * rng.standard_normal() * stock[-1]
            stock.append(stock[-1] * (1 - TRUE_Q) + new[t - 1] + shock)
        code = f"E0699{i:04d}"
        for y, v in zip(YEARS, stock, strict=True):
            rows.append((code, "la", "plans", y, float(round(v))))
        for y, v in zip(YEARS[:-1], new, strict=True):
            rows.append((code, "la", "new_plans", y, float(round(v))))
        items.append(
            bt.LaData(
                code=code,
                name=f"LA {i}",
                stock=pd.Series(dict(zip(YEARS, np.round(stock), strict=True)), dtype=float),
                new=pd.Series(dict(zip(YEARS[:-1], np.round(new), strict=True)), dtype=float),
                ceased=pd.Series(dtype=float),
                template=TEMPLATE,
            )
        )
    df = pd.DataFrame(rows, columns=["area_code", "level", "measure", "year", "value"])
    eng = df.groupby(["measure", "year"], as_index=False)["value"].sum()
    eng["area_code"], eng["level"] = sen2.ENGLAND_CODE, "england"
    df = pd.concat([df, eng], ignore_index=True)
    df["breakdown"], df["status"] = "all", "published"
    return df, items


@pytest.fixture(scope="module")
def synthetic() -> tuple[pd.DataFrame, list[bt.LaData]]:
    return synthetic_panel()


def _use_panel(monkeypatch: pytest.MonkeyPatch, panel: pd.DataFrame) -> None:
    monkeypatch.setattr(cb, "pooled_prior", lambda as_of: pooling.estimate(panel, as_of))


def test_pooled_prior_recovers_the_synthetic_parameters(synthetic) -> None:
    panel, _ = synthetic
    pr = pooling.estimate(panel, 2023)
    assert pr.growth == pytest.approx(TRUE_GROWTH, abs=0.01)
    assert pr.net_cessation == pytest.approx(TRUE_Q, abs=0.005)
    assert pr.stock_rel_sd == pytest.approx(STOCK_SD, rel=0.35)
    assert pr.new_plans_cv == pytest.approx(NEW_CV, rel=0.35)


def test_synthetic_backtest_recovers_growth_with_near_nominal_coverage(
    synthetic, monkeypatch: pytest.MonkeyPatch
) -> None:
    panel, items = synthetic
    _use_panel(monkeypatch, panel)
    fitted = []
    for d in items[:12]:
        res = run_demand(bt.scenario_as_of(d, 2022, 2025), 1, 0)
        fitted.append(res.params.growth)
    assert np.mean(fitted) == pytest.approx(TRUE_GROWTH, abs=0.015)
    out = bt.run_backtest(items, (2022,), paths=120, seed=3)
    m = out[out["method"] == bt.MODEL]
    inside = ((m["actual"] >= m["p10"]) & (m["actual"] <= m["p90"])).mean()
    assert 0.70 <= inside <= 0.92  # nominal 0.80 (108 forecasts: about +-4% by chance)
    ape = (100 * (out["p50"] - out["actual"]).abs() / out["actual"]).groupby(out["method"]).mean()
    assert ape[bt.MODEL] < 5.0


def test_no_leakage_past_the_origin(synthetic, monkeypatch: pytest.MonkeyPatch) -> None:
    panel, items = synthetic
    _use_panel(monkeypatch, panel)
    d = items[0]
    a = bt.backtest_la(d, (2022,), paths=60, seed=5)
    later = bt.LaData(
        code=d.code,
        name=d.name,
        stock=d.stock.where(d.stock.index <= 2022, d.stock * 1.5),
        new=d.new.where(d.new.index < 2022, d.new * 3),
        ceased=pd.Series({2022: 999.0, 2023: 5.0}),
        template=d.template,
    )
    b = bt.backtest_la(later, (2022,), paths=60, seed=5)
    cols = ["year", "horizon", "p10", "p50", "p90", "method"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    assert not np.allclose(a["actual"], b["actual"])  # only the actuals moved
    # the pooled prior for an origin ignores every later January and flow
    changed = panel.copy()
    late = ((changed["measure"] == "plans") & (changed["year"] > 2022)) | (
        (changed["measure"] == "new_plans") & (changed["year"] >= 2022)
    )
    changed.loc[late, "value"] *= 2
    assert pooling.estimate(changed, 2022) == pooling.estimate(panel, 2022)
    assert pooling.estimate(changed, 2023) != pooling.estimate(panel, 2023)


# --------------------------------------------------------------------------- contract


def test_backtest_csv_contract_and_reports(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bt"
    rc = main(
        ["backtest", "--la", "Devon", "--origins", "2022,2023", "--paths", "40", "--out", str(out)]
    )
    assert rc == 0
    df = pd.read_csv(out / "backtest.csv")
    assert list(df.columns) == bt.COLUMNS
    assert set(df["method"]) == set(bt.METHODS)
    assert (df["horizon"] == df["year"] - df["origin"]).all()
    # one row per origin, later January and method; actuals are the published counts
    assert len(df) == (3 + 2) * len(bt.METHODS)
    devon = sen2.series("E10000008", "plans")
    np.testing.assert_allclose(df["actual"], devon.loc[df["year"]].to_numpy())
    m = df[df["method"] == bt.MODEL]
    assert (m["p10"] <= m["p50"]).all() and (m["p50"] <= m["p90"]).all()
    assert df.loc[df["method"] != bt.MODEL, ["p10", "p90"]].isna().all().all()
    text = capsys.readouterr().out
    assert "coverage" in text and "cagr" in text and sen2.ATTRIBUTION in text
    html = (out / "backtest.html").read_text(encoding="utf-8")
    assert "P10-P90 coverage" in html and sen2.ATTRIBUTION in html
    sheets = pd.read_excel(out / "backtest.xlsx", sheet_name=None, header=None)
    assert set(sheets) == {"backtest", "forecasts"}
    assert len(sheets["forecasts"]) == len(df) + 1


def test_unknown_la_is_one_line_exit_2_and_no_folder(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bt"
    assert main(["backtest", "--la", "Devn", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Devn" in err[0] and "Devon" in err[0]
    assert not out.exists()
    assert main(["backtest", "--all", "--origins", "20x1", "--out", str(out)]) == 2
    assert main(["backtest", "scenario.yaml", "--all", "--out", str(out)]) == 2
    assert not out.exists()
