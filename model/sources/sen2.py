"""The DfE SEN2 release ("Education, health and care plans"): read as published, ship a compact panel.

`build_panel` reads the release's own CSV files (with their `x`/`z`/`c` markers, code changes and
boundary splits) into one long table per area, measure, year and breakdown; `panel()` reads the
copy shipped inside the package, so a run never needs the release folder.
"""

from __future__ import annotations

import difflib
import gzip
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

RELEASE = "sen2-2025"
ATTRIBUTION = (
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Source: Department for Education, Education, health and care plans (SEN2), reporting year 2025."
)
PANEL_FILE = Path(__file__).resolve().parent.parent / "data" / "sen2_panel.csv.gz"
ENGLAND_CODE = "E92000001"
COLUMNS = [
    "area_code",
    "area_name",
    "la_number",
    "level",
    "region_code",
    "measure",
    "year",
    "breakdown",
    "value",
    "status",
]
MARKERS = {"x": "x", "z": "z", "c": "c", "": "x"}  # x unavailable, z not applicable, c suppressed
FIRST_YEAR, LAST_YEAR = 2019, 2025  # January counts in this release

# Placement-type columns of the caseload and new-plans files, as the release names them.
PLACEMENT_COLUMNS = (
    "mainstream_la_maintained",
    "mainstream_la_maintained_resourced_provision",
    "mainstream_la_maintained_senunit",
    "mainstream_academy",
    "mainstream_academy_resourced_provision",
    "mainstream_academy_senunit",
    "mainstream_free_school",
    "mainstream_free_school_resourced_provision",
    "mainstream_free_school_senunit",
    "mainstream_independent",
    "mainstream_total",
    "special_la_maintained",
    "special_academy_free",
    "special_independent",
    "special_non_maintained",
    "special_total",
    "ap_pru_academy",
    "ap_pru_free_school",
    "ap_pru_la_maintained",
    "ap_pru_total",
    "general_fe_tertiary_colleges",
    "specialist_post_16_institutions",
    "ukrlp_provider",
    "fe_total",
    "elective_home_education",
    "other_arrangements_la",
    "other_arrangements_parents",
    "online_provider",
    "w_settings",
    "other_schools",
    "other_placement_settings",
    "neet",
    "neet_ntci",
    "neet_other",
    "neet_other_csa",
    "ed_elsewhere",
    "nm_early_years",
    "placement_unknown",
    "await_prov_2022",
    "perm_ex_2022",
)
NEEDS = ("ASD", "HI", "MLD", "MSI", "OTH", "PD", "PMLD", "SEMH", "SLCN", "SLD", "SpLD", "VI")

# (file, topic of the all-areas row, {breakdown: release column}) for the one-row-per-year measures.
_SIMPLE = {
    "requests": (
        "requests",
        "All requests for EHC needs assessments",
        {
            "received": "requests_received_in_year",
            "decided_to_assess": "requests_decided_to_assess",
            "decided_not_to_assess": "requests_decided_not_to_assess",
            "decision_not_made": "requests_decision_not_made",
            "withdrawn": "requests_withdrawn",
            "decided_within_6_weeks": "request_outcome_six_weeks",
            "decided_over_6_weeks": "request_outcome_over_6_weeks",
            "mediation": "mediation_related_request",
            "tribunal": "tribunal_related_request",
        },
    ),
    "assessments": (
        "assessments",
        "All EHC needs assessments",
        {
            "assessed": "assess_in_year",
            "plan_issued": "assess_issued",
            "plan_not_issued": "assess_not_issued",
            "not_made": "assess_not_made",
            "withdrawn": "assess_withdrawn",
            "within_time": "outcome_decision_within_time",
            "over_time": "outcome_decision_over_time",
            "mediation": "number_assess_mediation",
            "tribunal": "number_assess_tribunal",
        },
    ),
    "timeliness": (
        "timeliness_20_week",
        "All EHC plans issued",
        {
            "issued": "plans_issued_den",
            "issued_ex": "plans_issued_den_ex",
            "within_20_weeks": "plans_issued_within_20_weeks",
            "within_20_weeks_ex": "plans_issued_20_weeks_ex",
            "over_20_weeks_under_1_year": "plans_issued_gt20weeks_ltYear",
            "over_1_year": "plans_issued_gt_1_year",
        },
    ),
    "ceased_by_reason": (
        "ceased_plans",
        "All ceased EHC plans",
        {
            r: r
            for r in (
                "max_age",
                "needs_met",
                "he",
                "employ",
                "transfer",
                "no_engage",
                "moved_outside_eng",
                "deceased",
                "not_rec",
                "other",
            )
        },
    ),
    "annual_reviews": (
        "annual_reviews",
        "All annual reviews",
        {
            "plans": "total_ehc_plans",
            "due": "review_expected",
            "held": "total_review_meeting",
            "no_meeting": "no_review_meeting",
            "outstanding": "review_decision_outstanding",
            "decided_within_4_weeks": "number_decsion_4weeks",
            "decided_over_4_weeks": "number_decision_gt_4weeks",
            "outcome_amend": "outcome_amend",
            "outcome_cease": "outcome_cease",
            "outcome_maintain": "outcome_maintan",
            "no_outcome": "no_outcome",
        },
    ),
    "needs_all_plans": (
        "sen_needs_all_plans",
        "All EHC plans",
        {**{n: f"number_{n.lower()}" for n in NEEDS}, "unknown": "number_need_unknown"},
    ),
    "needs_new_plans": (
        "sen_need_newplans",
        "All EHC plans",
        {**{n: f"number_{n.lower()}" for n in NEEDS}, "unknown": "number_need_unknown"},
    ),
}

# Boundary changes, by the release's three-digit LA number. A split predecessor's years before the
# split are apportioned to its successors; areas merged into a new boundary have no comparable
# year and are dropped (Bournemouth, Poole and the old Dorset county became BCP and Dorset in 2019).
SPLITS = {"928": ("940", "941"), "909": ("942", "943")}  # Northamptonshire, Cumbria
DROPPED = {"835", "836", "837"}


@dataclass(frozen=True)
class Area:
    """A local authority, region or England, as the panel names it."""

    code: str
    name: str
    level: str
    region_code: str
    region_name: str


def _year(period: pd.Series) -> pd.Series:
    """January census year for academic-year periods (201819 -> 2019), else the calendar year."""
    p = period.astype(str)
    return np.where(p.str.len() == 6, p.str[:4].astype(int) + 1, p.astype(int))


def _age_label(text: str) -> str:
    """SEN2 age breakdowns ('age 2 and under', 'Aged 12', 'under 3') as '0-2', '12', '20+'."""
    t = text.lower()
    if "under" in t and ("2" in t or "3" in t):
        return "0-2"
    if "20 and over" in t:
        return "20+"
    m = re.search(r"(\d+)", t)
    return m.group(1) if m else "unknown"


def _values(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Numbers and statuses from the release's text cells (markers become NaN with their code)."""
    text = raw.fillna("").astype(str).str.strip()
    value = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
    status = np.where(np.isnan(value), text.map(lambda s: MARKERS.get(s, "x")), "published")
    return value, status


def _read(release: Path, name: str) -> pd.DataFrame:
    """One release file, with area keys normalised (region and England get their own codes)."""
    df = pd.read_csv(release / f"{name}.csv.gz", dtype=str, keep_default_na=False)
    level = df["geographic_level"].map(
        {"National": "england", "Regional": "region", "Local authority": "la"}
    )
    df = df[level.notna()].copy()
    df["level"] = level[level.notna()]
    df["year"] = _year(df["time_period"])
    la = df["level"] == "la"
    df["area_code"] = np.where(
        la, df["new_la_code"], np.where(df["level"] == "region", df["region_code"], ENGLAND_CODE)
    )
    df["area_name"] = np.where(
        la, df["la_name"], np.where(df["level"] == "region", df["region_name"], "England")
    )
    df["la_number"] = np.where(la, df["old_la_code"], "")
    df["region_code"] = np.where(df["level"] == "england", "", df["region_code"])
    return df


def _melt(
    df: pd.DataFrame, measure: str, columns: dict[str, str], breakdown: pd.Series | None = None
) -> pd.DataFrame:
    """Long rows for `columns` ({breakdown suffix: release column}); `breakdown` prefixes the key."""
    keys = ["area_code", "area_name", "level", "region_code", "la_number", "year"]
    frames = []
    for key, col in columns.items():
        if col not in df.columns:
            continue
        value, status = _values(df[col])
        label = key if breakdown is None else breakdown + ("" if key == "" else f"|{key}")
        frames.append(df[keys].assign(measure=measure, breakdown=label, value=value, status=status))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _topic(df: pd.DataFrame, starts: str) -> pd.DataFrame:
    return df[df["breakdown_topic"].str.startswith(starts)]


def _by_age(df: pd.DataFrame, topic: str, measure: str, column: str) -> pd.DataFrame:
    rows = _topic(df, topic)
    ages = rows["breakdown"].map(_age_label)
    rows = rows[ages != "unknown"]
    return _melt(rows, measure, {"": column}, ages[ages != "unknown"])


def read_release(release: Path) -> pd.DataFrame:
    """Every measure of the release as long rows, on the areas and codes the files use."""
    release = Path(release)
    parts = []
    case = _read(release, "caseload")
    total = _topic(case, "All EHC plans")
    parts.append(_melt(total, "plans", {"all": "ehcplans"}))
    parts.append(_melt(total, "plans_by_placement", {c: c for c in PLACEMENT_COLUMNS}))
    parts.append(_by_age(case, "Child or young persons age", "plans_by_age", "ehcplans"))
    aged = _topic(case, "Child or young persons age")
    ages = aged["breakdown"].map(_age_label)
    aged = aged[ages != "unknown"]
    both = _melt(
        aged, "plans_by_age_placement", {c: c for c in PLACEMENT_COLUMNS}, ages[ages != "unknown"]
    )
    parts.append(both[~((both["value"] == 0) & (both["status"] == "published"))])

    new = _read(release, "newplans")
    new_total = _topic(new, "New EHC plans")
    parts.append(_melt(new_total, "new_plans", {"all": "new_ehc_plans"}))
    parts.append(_melt(new_total, "new_plans_by_placement", {c: c for c in PLACEMENT_COLUMNS}))
    parts.append(_by_age(new, "Age when plan started", "new_plans_by_age", "new_ehc_plans"))

    ceased = _read(release, "ceased_plans")
    parts.append(_melt(_topic(ceased, "All ceased"), "ceased_plans", {"all": "total_ceased"}))
    parts.append(_by_age(ceased, "Age plan ceased", "ceased_by_age", "total_ceased"))

    files: dict[str, pd.DataFrame] = {"ceased_plans": ceased}
    for measure, (name, topic, cols) in _SIMPLE.items():
        if name not in files:
            files[name] = _read(release, name)
        parts.append(_melt(_topic(files[name], topic), measure, cols))

    res = _read(release, "residential_settings")
    parts.append(_melt(_topic(res, "All residential"), "residential", {"all": "Res_tot"}))
    aged_res = _topic(res, "Child or young persons age")
    ages = aged_res["breakdown"].map(_age_label)
    parts.append(
        _melt(
            aged_res[ages != "unknown"], "residential", {"all": "Res_tot"}, ages[ages != "unknown"]
        )
    )
    placed = _topic(res, "Type of placement")
    parts.append(_melt(placed, "residential", {"": "Res_tot"}, placed["breakdown"]))
    return pd.concat([p for p in parts if len(p)], ignore_index=True)


def _current_areas(rows: pd.DataFrame) -> pd.DataFrame:
    """Today's LAs (those with a January count in the last year), keyed by LA number."""
    last = rows[(rows["measure"] == "plans") & (rows["level"] == "la")]
    last = last[last["year"] == last["year"].max()]
    return last[["la_number", "area_code", "area_name", "region_code"]].drop_duplicates("la_number")


def _on_current_boundaries(rows: pd.DataFrame) -> pd.DataFrame:
    """Join predecessor codes onto today's LAs; apportion split predecessors to their successors."""
    current = _current_areas(rows).set_index("la_number")
    la = rows["level"] == "la"
    others = rows[~la]
    rows = rows[la & ~rows["la_number"].isin(DROPPED)]
    kept = rows[rows["la_number"].isin(current.index)].copy()
    for col in ("area_code", "area_name", "region_code"):
        kept[col] = kept["la_number"].map(current[col])

    parts = [others, kept]
    key = ["measure", "year", "breakdown"]
    for old, successors in SPLITS.items():
        pred = rows[rows["la_number"] == old]
        succ = kept[kept["la_number"].isin(successors)]
        if pred.empty or succ.empty:
            continue
        counts = succ[(succ["measure"] == "plans") & (succ["status"] == "published")]
        first = counts[counts["year"] == counts["year"].min()].set_index("la_number")["value"]
        shares = first / first.sum()
        have = set(map(tuple, succ[key].drop_duplicates().to_numpy()))
        missing = pred[[tuple(k) not in have for k in pred[key].to_numpy()]]
        for number in successors:
            part = missing.copy()
            part["value"] = part["value"] * shares[number]
            part["status"] = np.where(part["status"] == "published", "apportioned", part["status"])
            part["la_number"] = number
            for col in ("area_code", "area_name", "region_code"):
                part[col] = current.loc[number, col]
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


AGE_MEASURES = {
    "plans_by_age": ["0-2", *map(str, range(3, 26))],
    "new_plans_by_age": ["0-2", *map(str, range(3, 20)), "20+"],
    "ceased_by_age": ["0-2", *map(str, range(3, 20)), "20+"],
}


def _complete_ages(rows: pd.DataFrame) -> pd.DataFrame:
    """Fill the ages a published age breakdown leaves out: the release omits empty rows.

    A missing age is 0 where the rest of that year's breakdown is published, else unavailable (x).
    """
    extra = []
    keys = ["area_code", "area_name", "la_number", "level", "region_code", "year"]
    for measure, labels in AGE_MEASURES.items():
        have = rows[rows["measure"] == measure]
        if have.empty:
            continue
        groups = have[keys].drop_duplicates()
        grid = groups.merge(pd.DataFrame({"breakdown": labels}), how="cross")
        grid = grid.merge(
            have[keys + ["breakdown"]].assign(_in=1), how="left", on=keys + ["breakdown"]
        )
        missing = grid[grid["_in"].isna()].drop(columns="_in")
        hidden = have[have["status"] != "published"][keys].drop_duplicates().assign(_x=1)
        missing = missing.merge(hidden, how="left", on=keys)
        masked = missing["_x"].notna().to_numpy()
        missing = missing.drop(columns="_x").assign(
            measure=measure,
            value=np.where(masked, np.nan, 0.0),
            status=np.where(masked, "x", "published"),
        )
        extra.append(missing)
    return pd.concat([rows, *extra], ignore_index=True)


AGE_OF_TOTAL = {
    "plans": "plans_by_age",
    "new_plans": "new_plans_by_age",
    "ceased_plans": "ceased_by_age",
}


def _region_copies(rows: pd.DataFrame) -> pd.DataFrame:
    """Mark LA figures that repeat their region's total (a publication error) and correct them.

    In this release every Yorkshire and The Humber LA shows the region's 6,078 new plans for 2022.
    Such a figure gets status "corrected" and the sum of the LA's own age breakdown where that is
    fully published, else NaN with status "error".
    """
    la, region = rows["level"] == "la", rows["level"] == "region"
    keys = ["region_code", "measure", "year", "breakdown"]
    reg = rows[region][["area_code", "measure", "year", "breakdown", "value"]]
    reg = reg.rename(columns={"area_code": "region_code", "value": "_region"})
    merged = rows[la].reset_index().merge(reg, on=keys, how="left")
    n_la = rows[la].groupby(["region_code", "measure", "year"])["area_code"].nunique()
    many = merged.set_index(["region_code", "measure", "year"]).index.map(n_la) > 1
    bad = merged[(merged["value"] == merged["_region"]) & many & (merged["value"] > 100)]
    rows = rows.copy()
    for _, r in bad.iterrows():
        ages = rows[
            (rows["area_code"] == r["area_code"])
            & (rows["year"] == r["year"])
            & (rows["measure"] == AGE_OF_TOTAL.get(r["measure"], ""))
        ]
        complete = len(ages) > 0 and (ages["status"] == "published").all()
        rows.loc[r["index"], "value"] = ages["value"].sum() if complete else np.nan
        rows.loc[r["index"], "status"] = "corrected" if complete else "error"
    return rows


def build_panel(release: Path | str) -> pd.DataFrame:
    """The compact per-area panel from a release folder (the files as DfE publishes them)."""
    rows = _region_copies(_complete_ages(read_release(Path(release))))
    rows = _on_current_boundaries(rows)
    rows["year"] = rows["year"].astype(int)
    rows = rows.sort_values(["level", "area_code", "measure", "year", "breakdown"], kind="stable")
    return rows[COLUMNS].reset_index(drop=True)


def write_panel(panel_df: pd.DataFrame, path: Path | str = PANEL_FILE) -> Path:
    """Write the panel as gzip CSV with a fixed timestamp, so the same release gives the same bytes."""
    path = Path(path)
    text = panel_df.to_csv(index=False, float_format="%.10g", lineterminator="\n")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
        gz.write(text.encode("utf-8"))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    return path


@lru_cache(maxsize=1)
def panel() -> pd.DataFrame:
    """The shipped panel (read once per process)."""
    return pd.read_csv(
        PANEL_FILE,
        dtype={
            "area_code": str,
            "la_number": str,
            "region_code": str,
            "breakdown": str,
            "status": str,
        },
        keep_default_na=False,
        na_values={"value": [""]},
    )


@lru_cache(maxsize=1)
def authorities() -> pd.DataFrame:
    """One row per current LA: names, region and how much of the January series is published."""
    p = panel()
    plans = p[(p["level"] == "la") & (p["measure"] == "plans")]
    published = plans[plans["status"] == "published"]
    first = published.groupby("area_code")["year"].min().rename("first_year")
    count = published.groupby("area_code")["year"].nunique()
    regions = p[p["level"] == "region"][["area_code", "area_name"]].drop_duplicates("area_code")
    region_name = dict(zip(regions["area_code"], regions["area_name"], strict=True))
    out = plans[["area_code", "area_name", "la_number", "region_code"]].drop_duplicates("area_code")
    out = out.join(first, on="area_code")
    out["region_name"] = out["region_code"].map(region_name)
    out["full_series"] = (
        out["area_code"].map(count).fillna(0).astype(int) == LAST_YEAR - FIRST_YEAR + 1
    )
    out["first_year"] = out["first_year"].astype(int)
    return out.sort_values("area_name").reset_index(drop=True)[
        [
            "area_code",
            "area_name",
            "la_number",
            "region_code",
            "region_name",
            "first_year",
            "full_series",
        ]
    ]


def _area(row: pd.Series, level: str) -> Area:
    return Area(row["area_code"], row["area_name"], level, row["region_code"], row["region_name"])


def find_la(text: str) -> Area:
    """An LA by GSS code, three-digit LA number or name (case-insensitive), with a did-you-mean."""
    q = str(text).strip()
    table = authorities()
    hit = table[table["area_code"].str.upper() == q.upper()]
    if hit.empty:
        hit = table[table["area_name"].str.casefold() == q.casefold()]
    if hit.empty and q.isdigit():
        hit = table[table["la_number"] == q.zfill(3)]
    if len(hit) == 1:
        return _area(hit.iloc[0], "la")
    names = list(table["area_name"])
    close = difflib.get_close_matches(q, names, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise LookupError(f"unknown local authority '{q}'{hint}")


def _rows(code: str, measure: str, published_only: bool) -> pd.DataFrame:
    p = panel()
    rows = p[(p["area_code"] == code) & (p["measure"] == measure)]
    if published_only:
        rows = rows[rows["status"] == "published"]
    return rows


def series(
    code: str, measure: str, breakdown: str = "all", published_only: bool = True
) -> pd.Series:
    """One breakdown of a measure by year for an area (index: year)."""
    rows = _rows(code, measure, published_only)
    rows = rows[rows["breakdown"] == breakdown]
    return rows.set_index("year")["value"].astype(float).sort_index().rename(breakdown)


def table(code: str, measure: str, published_only: bool = True) -> pd.DataFrame:
    """A measure by year (rows) and breakdown (columns) for an area."""
    rows = _rows(code, measure, published_only)
    return rows.pivot_table(
        index="year", columns="breakdown", values="value", aggfunc="first", dropna=False
    ).sort_index()
