"""Hyperparameters of the demand calibration learned across every LA in the shipped SEN2 panel.

An LA has at most a handful of January counts and new-plan years, too few to pin down its own
growth: fitted alone, growth runs from -12% to +15% a year on similar spans. The prior here is the
empirical-Bayes answer: centre each LA's growth and net cessation on the national values and let
the spread between LAs set how far its own data may pull them.

Everything is computed from data published up to ``as_of`` (January counts to ``as_of``, flows of
calendar years before it: the plans of calendar year Y are known by January Y + 1), so a
rolling-origin backtest sees no later data. Definitions (LA = every authority with published
counts; national = the England row):

- ``growth``: national January stock growth a year, compound from the first year to ``as_of``
  (in steady growth inflow and stock grow alike; the stock is far less noisy than new plans,
  whose collection changed in 2023);
- ``growth_sd``: spread between LAs of their own compound stock growth over the same years;
- ``national_growth_sd``: how far a year's national growth of new plans strays from that centre,
  the root mean square of England's annual log growth of new plans (calendar years before
  ``as_of``) less ``log(1 + growth)``. A shock to it hits every LA at once (the 2023 move to
  person-level SEN2 raised new plans nationally by 27% in one year), which ``growth_sd``, a
  spread between LAs, cannot carry; 0 with a single year of flows (nothing to compare);
- ``growth_centre_se``: the standard error of the centre itself, ``national_growth_sd`` over the
  square root of the number of years it was measured on (the centre is an average of a series
  that swings by that much a year);
- ``net_cessation``: national plans leaving a year per plan the January before,
  ``(stock[t-1] + new[t-1] - stock[t]) / stock[t-1]`` (net of transfers in), averaged;
- ``net_cessation_sd``: spread between LAs of the same rate averaged over their years, less the
  part their yearly noise explains (empirical Bayes: var(LA means) - stock_rel_sd^2 / years,
  floored at NET_CESSATION_SD_MIN); on this release the LAs barely differ beyond noise;
- ``new_rate``: national new plans a year per plan the January before, averaged;
- ``transfer_share``: national share of ceased plans that transferred to another LA (calendar
  years before ``as_of``; TRANSFER_SHARE_DEFAULT before SEN2 published reasons, from 2022);
- ``new_plans_cv``: year-to-year noise of an LA's new plans beyond counting noise (the spread of
  its annual log change around the national change, over sqrt 2);
- ``new_plans_walk_sd``: the part of that swing that persists (a random walk in the level of an
  LA's new plans), from the lag-one autocovariance of the same annual log changes: a one-year
  swing that reverts gives consecutive changes a covariance of minus its variance, a lasting one
  none, so ``transient^2 = -cov`` (between 0 and half the variance) and
  ``walk^2 = var - 2 transient^2``; with a single change (origin 2021) it cannot be told apart and
  the swing is taken as transient (walk 0), as before;
- ``stock_rel_sd``: error of a January count one year on, given the flows (the spread of an LA's
  yearly net cessation around its own mean).

``persistence`` and ``long_run`` (the taper of growth) cannot be learned from six years; they are
assumptions (see PERSISTENCE and LONG_RUN).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Assumption: the growth above the long-run rate halves in about four and a half years (0.86 a
# year). Six years of SEN2 cannot identify a taper; with none, 10% a year compounds to 2.6x in ten
# years, which no LA plans for. A backtest at horizons of 1-4 years barely depends on it.
PERSISTENCE = 0.86
# Assumption: in the long run the new-plan rate per head stops growing (plans follow population).
LONG_RUN = 0.0
FIRST_YEAR = 2019  # first January of the SEN2 series
TRANSFER_SHARE_DEFAULT = 0.27  # England's share in 2022, the first year published
NET_CESSATION_SD_MIN = 0.005  # floor on the between-LA spread of net cessation (share per year)


@dataclass(frozen=True)
class PooledPrior:
    """Cross-LA prior for one origin; rates are shares per year."""

    as_of: int
    las: int
    growth: float
    growth_sd: float
    national_growth_sd: float
    growth_centre_se: float
    persistence: float
    long_run: float
    net_cessation: float
    net_cessation_sd: float
    new_rate: float
    transfer_share: float
    new_plans_cv: float
    new_plans_walk_sd: float
    stock_rel_sd: float

    def path_spread(self) -> dict[str, float]:
        """Spread each Monte Carlo path adds to the fitted parameters (the future is not the past).

        growth: the cross-LA spread of growth and the standard error of its centre (normal, share
        per year; the national shock of each year is drawn apart, ``national_factors``).
        incidence and cessation
        (log-sds of their multipliers): the spread of an LA's yearly net flow around its own mean
        (``stock_rel_sd``, a share of the stock), kept for the whole path (backtests show errors
        growing in proportion to the horizon) and split evenly between joiners and leavers, so the
        band is about symmetric (a leaver rate cannot fall below zero).
        """
        half = self.stock_rel_sd / np.sqrt(2.0)
        return {
            "growth": float(np.hypot(self.growth_sd, self.growth_centre_se)),
            "incidence": half / max(self.new_rate, 1e-6),
            "cessation": half / max(self.net_cessation, 1e-6),
        }

    @property
    def new_plans_transient_cv(self) -> float:
        """The part of ``new_plans_cv`` that lasts one year (the rest is ``new_plans_walk_sd``)."""
        return float(np.sqrt(max(self.new_plans_cv**2 - self.new_plans_walk_sd**2 / 2.0, 0.0)))

    def summary(self) -> dict[str, Any]:
        return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(self).items()}


NATIONAL_SPAWN_KEY = 29  # the national shock's own random stream (model.process uses 13)


def national_factors(sd: float, paths: int, years: int, seed: int) -> np.ndarray:
    """Multiplier [paths, years] of the new-plan rate from a national growth shock.

    Column 0 is the base year (1); each later year adds a normal shock with sd ``sd`` to the log
    growth of that year, kept in the level afterwards (a random walk in the log level, zero-mean
    in the log as estimated, so the median path is unchanged). The draws depend only on ``seed`` and the path, year by year, so every LA run with
    the same seed shares them (path p is one national future for all) and the demand and the
    statutory pipeline see the same shock in the same unpublished year.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(NATIONAL_SPAWN_KEY,)))
    z = rng.standard_normal((max(years - 1, 0), paths)).T  # year by year: a prefix is stable
    out = np.ones((paths, max(years, 1)))
    out[:, 1:] = np.exp(sd * np.cumsum(z, axis=1))
    return out


def _wide(panel: pd.DataFrame, measure: str, level: str, last_year: int) -> pd.DataFrame:
    """Published 'all' counts of ``measure`` as area x year, years up to ``last_year``."""
    sel = panel[
        (panel["measure"] == measure)
        & (panel["breakdown"] == "all")
        & (panel["level"] == level)
        & panel["status"].isin(["published", "corrected"])
        & (panel["year"] <= last_year)
    ]
    return sel.pivot_table(index="area_code", columns="year", values="value", aggfunc="sum")


def totals(panel: pd.DataFrame, as_of: int, level: str = "la") -> tuple[pd.DataFrame, pd.DataFrame]:
    """January stock (years <= as_of) and new plans (calendar years < as_of), area x year."""
    return _wide(panel, "plans", level, as_of), _wide(panel, "new_plans", level, as_of - 1)


def estimate(panel: pd.DataFrame, as_of: int) -> PooledPrior:
    """The pooled prior from ``panel`` (columns as ``model.sources.sen2.panel``) up to ``as_of``."""
    last = int(panel.loc[panel["measure"] == "plans", "year"].max())
    as_of = min(as_of, last)
    if as_of < FIRST_YEAR + 1:
        raise ValueError(
            f"a pooled prior needs two Januaries of SEN2 history; {as_of} is before {FIRST_YEAR + 1}"
        )
    years = list(range(FIRST_YEAR, as_of + 1))
    S, N = totals(panel, as_of, "la")
    S = S.reindex(columns=years).dropna()  # LAs with every January published
    N = N.reindex(index=S.index, columns=years[:-1])
    Se, Ne = totals(panel, as_of, "england")
    se = Se.reindex(columns=years).iloc[0].to_numpy(float)
    ne = Ne.reindex(columns=years[:-1]).iloc[0].to_numpy(float)
    k = len(years) - 1
    growth = float((se[-1] / se[0]) ** (1.0 / k) - 1.0)
    # national new-plan growth off the trend, year by year
    dev = np.diff(np.log(np.where(ne > 0, ne, np.nan))) - np.log1p(growth)
    dev = dev[np.isfinite(dev)]
    national_sd = float(np.sqrt(np.mean(dev**2))) if dev.size else 0.0
    s = S.to_numpy(float, copy=True)
    n = N.to_numpy(float, copy=True)
    # new plans above half the stock are not plausible (a region's total filed on its LAs)
    n[n > 0.5 * s[:, :-1]] = np.nan

    g_la = (s[:, -1] / s[:, 0]) ** (1.0 / k) - 1.0
    q = (s[:, :-1] + n - s[:, 1:]) / s[:, :-1]  # LA x transition
    q_nat = float(np.mean((se[:-1] + ne - se[1:]) / se[:-1]))
    # an LA whose every transition was set aside (new plans above half its stock) has no rate
    has_q = np.isfinite(q).any(axis=1)
    q_la = np.full(len(q), np.nan)
    q_la[has_q] = np.nanmean(q[has_q], axis=1)
    q_dev = q - q_la[:, None]
    stock_rel_sd = float(np.sqrt(np.nanmean(q_dev**2) * k / max(k - 1, 1))) if k > 1 else 0.02
    walk = 0.0
    if n.shape[1] >= 2:
        d = np.diff(np.log(n), axis=1) - np.diff(np.log(ne))[None, :]
        var = float(np.nanmean(d**2))
        cv = float(np.sqrt(var / 2.0))
        if d.shape[1] >= 2:  # lag-one autocovariance of the changes, LA by LA
            cov = float(np.nanmean(d[:, 1:] * d[:, :-1]))
            transient2 = min(max(-cov, 0.0), var / 2.0)
            walk = float(np.sqrt(var - 2.0 * transient2))
    else:
        cv = 0.15  # assumption with one year of flows: the spread seen with two or more
    return PooledPrior(
        as_of=as_of,
        las=int(len(S)),
        growth=growth,
        growth_sd=float(np.std(g_la, ddof=1)),
        national_growth_sd=national_sd,
        growth_centre_se=float(national_sd / np.sqrt(dev.size)) if dev.size else 0.0,
        persistence=PERSISTENCE,
        long_run=LONG_RUN,
        net_cessation=q_nat,
        net_cessation_sd=float(
            np.sqrt(
                max(
                    np.nanvar(q_la, ddof=1) - stock_rel_sd**2 / k,
                    NET_CESSATION_SD_MIN**2,
                )
            )
        ),
        new_rate=float(np.mean(ne / se[:-1])),
        transfer_share=_transfer_share(panel, as_of),
        new_plans_cv=cv,
        new_plans_walk_sd=walk,
        stock_rel_sd=max(stock_rel_sd, 0.005),
    )


def _transfer_share(panel: pd.DataFrame, as_of: int) -> float:
    sel = panel[
        (panel["level"] == "england")
        & panel["status"].isin(["published", "corrected"])
        & (panel["year"] < as_of)
        & (
            ((panel["measure"] == "ceased_plans") & (panel["breakdown"] == "all"))
            | ((panel["measure"] == "ceased_by_reason") & (panel["breakdown"] == "transfer"))
        )
    ]
    wide = sel.pivot_table(index="year", columns="measure", values="value", aggfunc="sum").dropna()
    if wide.empty or "ceased_by_reason" not in wide:
        return TRANSFER_SHARE_DEFAULT
    return float(wide["ceased_by_reason"].sum() / wide["ceased_plans"].sum())


PRIOR_FILE = Path(__file__).resolve().parent / "data" / "pooled_prior.csv"
FLOAT_FORMAT = "%.12g"  # what the shipped table keeps of each prior (and a test compares to)


def priors_table(panel: pd.DataFrame) -> pd.DataFrame:
    """The pooled prior at every origin the panel allows (one row per ``as_of``), as shipped in
    PRIOR_FILE beside the panel by ``sendplan data build``."""
    last = int(panel.loc[panel["measure"] == "plans", "year"].max())
    return pd.DataFrame([asdict(estimate(panel, y)) for y in range(FIRST_YEAR + 1, last + 1)])


def write_priors(panel: pd.DataFrame, path: Path | str = PRIOR_FILE) -> Path:
    """Write ``priors_table`` as CSV, floats to 12 significant digits: numpy's sums differ in the
    last bit between CPUs (SIMD width), and the file must be the same whichever machine builds it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    priors_table(panel).to_csv(tmp, index=False, lineterminator="\n", float_format=FLOAT_FORMAT)
    tmp.replace(path)
    return path


@functools.lru_cache(maxsize=1)
def _shipped() -> dict[int, PooledPrior]:
    """The priors shipped beside the panel, by ``as_of`` (empty if the file is missing)."""
    if not PRIOR_FILE.is_file():
        return {}
    rows = pd.read_csv(PRIOR_FILE).to_dict("records")
    fields = PooledPrior.__dataclass_fields__
    return {
        int(r["as_of"]): PooledPrior(
            **{k: (int(v) if fields[k].type in ("int", int) else float(v)) for k, v in r.items()}
        )
        for r in rows
    }


@functools.lru_cache(maxsize=16)
def pooled_prior(as_of: int) -> PooledPrior:
    """The pooled prior from the shipped SEN2 panel, data up to January ``as_of`` (cached).

    Read from PRIOR_FILE, computed from the same panel when it was built (a test checks they
    agree): estimating it means reading the whole panel, most of a second per process."""
    shipped = _shipped()
    if shipped and as_of >= min(shipped):
        return shipped[min(as_of, max(shipped))]
    from .sources import sen2

    return estimate(sen2.panel(), as_of)
