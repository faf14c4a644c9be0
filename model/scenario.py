"""The scenario schema: every input the engine reads, typed, with a default, a description and a unit.

Conventions used by every key (see docs/decisions/0001-years-and-labels.md):
- ``year`` is the January census year of an academic year: 2025 means academic year 2024/25,
  whose SEN2 count is taken in January 2025.
- ``financial_year`` is labelled by its starting calendar year: 2024 means April 2024 to March 2025.
- Money is in pounds (GBP) at ``meta.price_base_year`` prices unless a key says otherwise.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_AGE = 25
AGES = tuple(range(MAX_AGE + 1))

# Phases are fixed by age at 31 August (start of the academic year).
PHASE_AGES: dict[str, tuple[int, int]] = {
    "early_years": (0, 4),
    "primary": (5, 10),
    "secondary": (11, 15),
    "post16": (16, 18),
    "post19": (19, 25),
}
PHASES = tuple(PHASE_AGES)
# First ages of a phase: the points where a child transfers and needs a new place.
TRANSFER_AGES = tuple(lo for lo, _ in PHASE_AGES.values())

DEFAULT_NEEDS = (
    "ASD",
    "SEMH",
    "SLCN",
    "MLD",
    "SLD",
    "PMLD",
    "SpLD",
    "HI",
    "VI",
    "MSI",
    "PD",
    "OTH",
)


def phase_of_age(age: int) -> str:
    """Phase of a child aged ``age`` at the start of the academic year."""
    for phase, (lo, hi) in PHASE_AGES.items():
        if lo <= age <= hi:
            return phase
    raise ValueError(f"age {age} is outside 0..{MAX_AGE}")


def P(default: Any = ..., description: str = "", unit: str = "-", **kw: Any) -> Any:
    """A documented parameter: default, one-line description and unit (shown in the JSON Schema)."""
    return Field(default, description=description, json_schema_extra={"unit": unit}, **kw)


# Bounded number types, each named by its unit. Every float in the schema is finite (``Strict``
# refuses NaN and infinity); these bounds keep values physically sensible so that no input can
# overflow a stage, stall a solver on absurd coefficients or make a run allocate without limit.
YEAR_MIN, YEAR_MAX = 1990, 2100
MAX_MONEY_GBP = 1e12  # about ten times England's whole DSG: far beyond any one LA
MAX_PLACES = 1e6  # places or plans: more than every EHCP in England
MAX_PEOPLE = 1e7  # residents aged 0-25 in one locality (England's whole 0-25 population is ~19m)
MAX_KM = 2000.0  # one-way distance: longer than Great Britain
MAX_FACTOR = 100.0  # multipliers (cost, prevalence); lever factors have their own, smaller, cap
MAX_LEVER_FACTOR = 10.0  # a lever that multiplies a rate more than tenfold is a typo
MAX_LEAD_TIME_YEARS = 15
MAX_BUILD_UNIT_PLACES = 2000
MAX_LOCALITIES = 100  # a county by school planning area has a few dozen
MAX_KEYS = 40  # needs, settings, bands
MAX_ROWS = 2000  # list sections: history detail, pipeline, levers, backlog, inclusion shifts
MAX_MODEL_CELLS = 5e8  # paths x years x ages x needs x localities: about 2 GB of float32 per array
# years x home x provider localities x needs x phases x settings: the placement arrays (Devon
# 3.8e5; 64 Devon-like localities 2.4e7, about 200 MB per path, allocated a path at a time)
MAX_PLACEMENT_CELLS = 5e7

Year = Annotated[int, Field(ge=YEAR_MIN, le=YEAR_MAX)]
Money = Annotated[float, Field(ge=-MAX_MONEY_GBP, le=MAX_MONEY_GBP)]  # signed: deficits, balances
Cost = Annotated[float, Field(ge=0, le=MAX_MONEY_GBP)]  # a cost or an income: not negative
Places = Annotated[float, Field(ge=0, lt=MAX_PLACES)]  # places, plans, children
People = Annotated[float, Field(ge=0, le=MAX_PEOPLE)]
Km = Annotated[float, Field(ge=0, le=MAX_KM)]
Factor = Annotated[float, Field(ge=0, le=MAX_FACTOR)]
Rate = Annotated[float, Field(ge=-1, le=1)]  # an annual growth or change, as a share per year
LeadYears = Annotated[int, Field(ge=0, le=MAX_LEAD_TIME_YEARS)]
UnitPlaces = Annotated[int, Field(ge=1, le=MAX_BUILD_UNIT_PLACES)]


class Strict(BaseModel):
    """Base for every section: unknown keys are errors, so a misspelt key never passes silently."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


# --------------------------------------------------------------------------- meta


class Meta(Strict):
    name: str = P(description="Human-readable scenario name", unit="text", min_length=1)
    description: str = P("", "What this scenario tests and why", "text")
    base_year: Year = P(
        description="January census year of the starting stock (2024 = academic year 2023/24); "
        "the first financial year reported starts in April of this year",
        unit="year",
    )
    horizon_years: int = P(10, "Years simulated after the base year", "years", ge=1, le=30)
    price_base_year: Year = P(
        description="Financial year (by starting year) whose prices unit costs are given in",
        unit="financial year",
    )
    la_name: str = P("", "Local authority the scenario describes", "text")


# --------------------------------------------------------------------------- geography


class Locality(Strict):
    id: str = P(
        description="Short key used everywhere else", unit="key", pattern=r"^[a-z][a-z0-9_]*$"
    )
    name: str = P(description="Display name", unit="text")
    lat: float | None = P(None, "Latitude of the locality's centre", "degrees", ge=-90, le=90)
    lon: float | None = P(None, "Longitude of the locality's centre", "degrees", ge=-180, le=180)


class Geography(Strict):
    localities: list[Locality] = P(
        description="Planning areas of the LA", unit="list", min_length=1, max_length=MAX_LOCALITIES
    )
    distances_km: dict[str, dict[str, Km]] | None = P(
        None,
        "Typical travel distance from home locality (row) to provider locality (column); the "
        "diagonal is the typical distance within a locality. Square over all locality ids.",
        "km",
    )
    road_factor: float = P(
        1.3,
        "Road distance per straight-line distance, used when distances come from coordinates",
        "ratio",
        ge=1,
        le=5,
    )
    within_locality_km: float = P(
        8.0,
        "Typical distance within a locality, used when distances come from coordinates",
        "km",
        ge=0,
        le=MAX_KM,
    )


# --------------------------------------------------------------------------- population


class Population(Strict):
    base_0_25: dict[str, People] = P(
        description="Resident population aged 0-25 by locality in the base year", unit="people"
    )
    age_shares: list[float] = P(
        description="Share of the 0-25 population at each single year of age 0..25 (26 values, sum 1)",
        unit="share",
        min_length=26,
        max_length=26,
    )
    growth: float = P(
        0.0, "Annual growth of the 0-25 population", "share per year", ge=-0.2, le=0.2
    )
    growth_by_locality: dict[str, Annotated[float, Field(ge=-0.2, le=0.2)]] = P(
        default_factory=dict,
        description="Per-locality growth replacing `growth`",
        unit="share per year",
    )


# --------------------------------------------------------------------------- demand


class Lever(Strict):
    """Scale a rate for chosen groups from a future year (witan.send's scenario operations)."""

    rate: Literal["requests", "conversion", "cessation", "new_plans"] = P(
        description="Which rate to scale: EHCNA requests, conversion to plans, cessation (leavers), "
        "or new plans directly (joiners)",
        unit="key",
    )
    factor: float = P(
        description="Multiplier applied to the rate", unit="ratio", ge=0, le=MAX_LEVER_FACTOR
    )
    from_year: Year = P(description="First year the change applies", unit="year")
    to_year: Year | None = P(
        None, "Last year the change applies (inclusive); open-ended if omitted", "year"
    )
    ages: list[int] | None = P(
        None, "Ages the change applies to (all if omitted)", "years", max_length=MAX_AGE + 1
    )
    needs: list[str] | None = P(
        None, "Primary needs the change applies to (all if omitted)", "keys"
    )
    localities: list[str] | None = P(
        None, "Localities the change applies to (all if omitted)", "keys"
    )
    ramp_years: int = P(0, "Years over which the change phases in linearly", "years", ge=0, le=30)
    label: str = P("", "Why this lever exists", "text")


class Backlog(Strict):
    year: Year = P(description="Year whose stock includes the extra plans", unit="year")
    plans: float = P(
        description="Extra plans issued by clearing an assessment backlog",
        unit="plans",
        ge=0,
        lt=MAX_PLACES,
    )


class Calibration(Strict):
    enabled: bool = P(True, "Fit parameters to the January history before projecting", "flag")
    fit: list[Literal["incidence", "growth", "cessation"]] = P(
        default_factory=lambda: ["incidence", "growth"],
        description="Parameters to fit; those not listed stay as given",
        unit="keys",
    )
    ignore_before: Year | None = P(
        None, "Ignore history before this year (e.g. pre-reform counts)", "year"
    )
    growth_prior: Literal["pooled", "none"] = P(
        "pooled",
        "pooled: growth of the new-plan rate, its spread, the net cessation rate and the noise "
        "levels are learned across all LAs (SEN2 panel up to the base year) and updated by this "
        "history (a typed `demand.growth` is kept as typed); none: the scenario's own values "
        "and weak priors",
        "key",
    )


class Uncertainty(Strict):
    growth_sd: float = P(
        0.02,
        "Standard deviation of the annual growth rate across paths",
        "share per year",
        ge=0,
        le=0.5,
    )
    incidence_cv: float = P(
        0.05,
        "Coefficient of variation of the new-plan rate across paths (lognormal)",
        "ratio",
        ge=0,
        le=2,
    )
    cessation_cv: float = P(
        0.10,
        "Coefficient of variation of cessation rates across paths (lognormal)",
        "ratio",
        ge=0,
        le=2,
    )
    poisson: bool = P(True, "Add Poisson noise to new and ceased plans in each cell", "flag")
    parameters: Literal["fitted", "given"] = P(
        "fitted",
        "fitted: draw each path's incidence, growth and cessation from the calibration's "
        "uncertainty (Laplace approximation incl. the cross-LA spread of growth); given: use "
        "growth_sd, incidence_cv and cessation_cv around the calibrated values",
        "key",
    )


class HistoryRow(Strict):
    year: Year = P(description="January census year", unit="year")
    plans: float = P(description="EHCPs counted", unit="plans", ge=0, lt=MAX_PLACES)
    age: int | None = P(None, "Age, where the count is by age", "years", ge=0, le=MAX_AGE)
    need: str | None = P(None, "Primary need, where the count is by need", "key")
    locality: str | None = P(None, "Locality, where the count is by locality", "key")


class FlowRow(Strict):
    year: Year = P(
        description="Calendar year of the flow (SEN2: plans made or ceased in that year, which "
        "are the model's joiners or leavers into the next January)",
        unit="year",
    )
    flow: Literal["new", "ceased"] = P(description="New plans made, or plans ceased", unit="key")
    plans: float = P(description="Plans in the flow", unit="plans", ge=0, lt=MAX_PLACES)
    age_min: int | None = P(
        None, "Youngest age in the band (None: all ages)", "years", ge=0, le=MAX_AGE
    )
    age_max: int | None = P(
        None, "Oldest age in the band, inclusive (None: all ages)", "years", ge=0, le=MAX_AGE
    )

    @model_validator(mode="after")
    def _band(self) -> FlowRow:
        if (self.age_min is None) != (self.age_max is None):
            raise ValueError("give both age_min and age_max, or neither (all ages)")
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise ValueError(f"age_min {self.age_min} is above age_max {self.age_max}")
        return self


class Demand(Strict):
    needs: list[str] = P(
        default_factory=lambda: list(DEFAULT_NEEDS),
        description="Primary need categories (SEN2 codes or the scenario's own grouping)",
        unit="keys",
        min_length=1,
        max_length=MAX_KEYS,
    )
    history: dict[Year, Places] = P(
        default_factory=dict,
        description="January counts of EHCPs (all ages, needs, localities) by year",
        unit="plans",
    )
    flow_history: list[FlowRow] = P(
        default_factory=list,
        description="Published flows for calibration: new and ceased plans by calendar year, "
        "all ages or by age band (SEN2)",
        unit="rows",
    )
    timeliness_within_20_weeks: dict[Year, Annotated[float, Field(ge=0, le=1)]] = P(
        default_factory=dict,
        description="Share of new plans issued within 20 weeks (including exceptions) by calendar "
        "year (SEN2); carried for reports and comparison, not used by the projection",
        unit="share",
    )
    history_detail: list[HistoryRow] = P(
        default_factory=list,
        description="January counts broken down by age, need or locality",
        unit="rows",
        max_length=MAX_ROWS,
    )
    stock_age_shares: list[float] = P(
        description="Share of the base-year stock at each age 0..25 (26 values, sum 1)",
        unit="share",
        min_length=26,
        max_length=26,
    )
    need_shares: dict[str, float] = P(
        description="Share of plans by primary need (stock and new plans unless `new_need_shares`)",
        unit="share",
    )
    new_need_shares: dict[str, float] | None = P(
        None, "Share of new plans by primary need, if different from the stock", "share"
    )
    locality_prevalence: dict[str, Factor] = P(
        default_factory=dict,
        description="Relative rate of plans per head in each locality (1 = county average)",
        unit="ratio",
    )
    requests_per_1000: float = P(
        description="EHC needs assessment requests per year per 1,000 residents aged 0-25 in the base year",
        unit="requests per 1,000 per year",
        ge=0,
        le=1000,
    )
    conversion_rate: float = P(
        description="Share of assessment requests that lead to a plan", unit="share", ge=0, le=1
    )
    new_age_shares: list[float] = P(
        description="Share of new plans issued at each age 0..25 (26 values, sum 1)",
        unit="share",
        min_length=26,
        max_length=26,
    )
    growth: float = P(
        0.0,
        "Annual growth of the new-plan rate per head after the base year; typed here it "
        "overrides the pooled prior (`calibration.growth_prior`), otherwise it is learned",
        "share per year",
        ge=-0.5,
        le=1,
    )
    growth_end_year: Year | None = P(None, "Last year the growth applies; flat afterwards", "year")
    growth_persistence: float = P(
        1.0,
        "Share of the growth above `growth_long_run` kept each year after the first (1 = no "
        "taper); with the pooled prior the pooled value unless given",
        "share per year",
        ge=0,
        le=1,
    )
    growth_long_run: float = P(
        0.0,
        "Growth of the new-plan rate per head that growth reverts to",
        "share per year",
        ge=-0.5,
        le=1,
    )
    cessation_rate: float = P(
        0.03,
        "Share of plans ceasing each year at ages without a specific rate",
        "share per year",
        ge=0,
        le=1,
    )
    cessation_by_age: dict[int, float] = P(
        default_factory=dict,
        description="Share of plans ceasing at the end of the year a young person is this age "
        "(e.g. 15: leaving school at 16, 18: at 19); age 25 always ceases all",
        unit="share per year",
    )
    backlog: list[Backlog] = P(
        default_factory=list,
        description="One-off backlog clearance",
        unit="rows",
        max_length=MAX_ROWS,
    )
    levers: list[Lever] = P(
        default_factory=list,
        description="Rate changes from a future year",
        unit="rows",
        max_length=100,
    )
    calibration: Calibration = P(
        default_factory=Calibration, description="Fit to history", unit="section"
    )
    uncertainty: Uncertainty = P(
        default_factory=Uncertainty, description="Monte Carlo spread", unit="section"
    )


# --------------------------------------------------------------------------- settings and suitability


class Setting(Strict):
    name: str = P(description="Display name", unit="text")
    phases: list[str] = P(description="Phases this setting serves", unit="keys", min_length=1)
    capacity_limited: bool = P(
        True,
        "Whether places are limited by `capacity` (mainstream and independent usually are not)",
        "flag",
    )
    overflow: bool = P(
        False,
        "Where children go when state-funded capacity is full (independent, in real LAs)",
        "flag",
    )
    state_funded: bool = P(
        True, "State-funded (maintained or academy) rather than independent", "flag"
    )
    counts_as_mainstream: bool = P(
        False, "Counts towards KPI 14 (share of plans in mainstream)", "flag"
    )
    needs: list[str] | None = P(
        None,
        "Primary needs this setting is designated for (e.g. an SEMH special school); all if "
        "omitted. Neither the unmitigated forecast nor the optimiser places other needs here",
        "keys",
    )
    planned: bool = P(
        True,
        "Whether the optimiser plans placements here. False for plans carried without a planned "
        "place (elective home education, NEET, awaiting provision) or reached only through "
        "exclusion: both variants keep today's share of entrants here and no band uses it. A "
        "setting no band lists is carried the same way",
        "flag",
    )


class Band(Strict):
    description: str = P("", "Which children this complexity band describes", "text")
    settings: list[str] = P(
        description="Settings that can meet this band's needs", unit="keys", min_length=1
    )


class Inclusion(Strict):
    """KPI 14 lever: move a share of one band's demand to a less intensive band each year."""

    from_band: str = P(description="Band children move out of", unit="key")
    to_band: str = P(description="Band children move into", unit="key")
    share_per_year: float = P(
        description="Share of `from_band` demand moved per year", unit="share per year", ge=0, le=1
    )
    from_year: Year = P(description="First year the shift applies", unit="year")
    max_share: float = P(1.0, "Cap on the cumulative share moved", "share", ge=0, le=1)


class Placements(Strict):
    mix: dict[str, dict[str, dict[str, float]]] = P(
        description="Today's placement mix: phase -> need (or `default`) -> setting -> share (sums to 1). "
        "Used for the base-year stock and, in the unmitigated forecast, for new placements",
        unit="share",
    )
    band_shares: dict[str, dict[str, dict[str, float]]] = P(
        description="Complexity bands: phase -> need (or `default`) -> band -> share (sums to 1)",
        unit="share",
    )
    movers: dict[str, dict[str, dict[str, float]]] = P(
        default_factory=dict,
        description="Mid-phase moves: phase -> from setting -> to setting -> annual share moving",
        unit="share per year",
    )
    overflow: dict[str, list[str]] = P(
        default_factory=dict,
        description="Overflow chain by phase: when the wanted setting is full, entrants try these "
        "settings in order (spare places at home, then nearest), before the phase's `overflow` "
        "setting takes the rest (e.g. post16: [post16] sends post-16 overflow to FE first)",
        unit="keys",
    )


# --------------------------------------------------------------------------- capacity


class PipelineItem(Strict):
    name: str = P(description="Project name", unit="text")
    setting: str = P(description="Setting of the new places", unit="key")
    locality: str = P(description="Locality of the new places", unit="key")
    places: float = P(description="Places added", unit="places", ge=0, lt=MAX_PLACES)
    open_year: Year = P(description="First year the places are available (as planned)", unit="year")
    delay_years: int = P(0, "Delay to the opening; a scenario lever", "years", ge=0, le=30)
    source: str = P("", "Where this project is recorded", "text")


class MarketLimit(Strict):
    """Places a provider market is believed to have; the run warns when placements exceed it."""

    name: str = P(description="What the limit describes", unit="text", min_length=1)
    settings: list[str] = P(
        description="Settings whose placements count", unit="keys", min_length=1
    )
    phases: list[str] = P(description="Phases whose placements count", unit="keys", min_length=1)
    places: float = P(description="Places in the base year", unit="places", ge=0)
    growth: float = P(0.0, "Annual growth of the places", "share per year", ge=-0.5, le=1)
    source: str = P("", "Where the figure comes from", "text")

    def places_by_year(self, years: list[int]) -> list[float]:
        """Places in each year, grown from the first (base) year."""
        return [self.places * (1.0 + self.growth) ** (y - years[0]) for y in years]


class Capacity(Strict):
    existing: dict[str, dict[str, Places]] = P(
        default_factory=dict,
        description="Places in the base year: setting -> locality -> places",
        unit="places",
    )
    pipeline: list[PipelineItem] = P(
        default_factory=list, description="Committed new places", unit="rows", max_length=MAX_ROWS
    )
    max_occupancy: float = P(
        1.0, "Share of places that can be filled (allows for churn)", "share", gt=0, le=1
    )
    growth: dict[str, float] = P(
        default_factory=dict,
        description="Annual growth of a setting's existing places (e.g. FE colleges adding "
        "high-needs places as demand grows), compounding from the base year",
        unit="share per year",
    )
    market_limits: list[MarketLimit] = P(
        default_factory=list,
        description="Places a provider market is believed to have (e.g. specialist post-16 "
        "places for independent post-16 and 19+ placements); placements above it are allowed "
        "but reported as a warning",
        unit="rows",
    )
    delays: dict[str, Annotated[int, Field(ge=0, le=30)]] = P(
        default_factory=dict,
        description="Extra delay by pipeline project name (merges through `extends`, unlike the "
        "pipeline list); added to that item's `delay_years` when the scenario is validated",
        unit="years",
    )

    @model_validator(mode="after")
    def _fold_delays(self) -> Capacity:
        # Every consumer reads `delay_years`; folding here keeps one source of truth.
        # Unknown names are reported by reference_problems.
        for item in self.pipeline:
            extra = self.delays.get(item.name, 0)
            if extra:
                item.delay_years = min(30, item.delay_years + extra)
        return self

    def open_year(self, item: PipelineItem) -> int:
        """Year the project's places are first available, after any delay."""
        return item.open_year + item.delay_years


# --------------------------------------------------------------------------- costs


class Transport(Strict):
    share_transported: dict[str, float] = P(
        default_factory=dict,
        description="Share of pupils given home-to-school transport, by setting",
        unit="share",
    )
    fixed_gbp: float = P(
        0.0,
        "Annual cost per transported pupil regardless of distance",
        "GBP per pupil per year",
        ge=0,
        le=MAX_MONEY_GBP,
    )
    per_km_gbp: float = P(
        0.0,
        "Annual cost per transported pupil per km of one-way distance",
        "GBP per pupil per km per year",
        ge=0,
        le=MAX_MONEY_GBP,
    )
    extra_km: dict[str, Km] = P(
        default_factory=dict,
        description="Extra one-way distance for a setting (independent schools are often out of county)",
        unit="km",
    )
    funding_source: str = P("general_fund", "Who pays for transport", "key")


class Costs(Strict):
    unit_cost_gbp: dict[str, Cost] = P(
        description="High-needs cost per place per year by setting (place funding plus top-up)",
        unit="GBP per place per year",
    )
    unit_cost_by_phase_gbp: dict[str, dict[str, Cost]] = P(
        default_factory=dict,
        description="Cost per place per year replacing `unit_cost_gbp` for a setting in some "
        "phases: setting -> phase -> cost (e.g. mainstream post-16, where the first 6,000 of "
        "support, element 2, is paid from the HNB, not the school's budget)",
        unit="GBP per place per year",
    )
    place_funding_gbp: dict[str, Cost] = P(
        default_factory=dict,
        description="Part of the unit cost paid per commissioned place, filled or not (DfE place "
        "funding: 10,000 special, 6,000 resource bases and units); the rest is the top-up per "
        "pupil. Empty commissioned places of a capacity-limited setting still cost this",
        unit="GBP per place per year",
    )
    residential_share: dict[str, Annotated[float, Field(ge=0, le=1)]] = P(
        default_factory=dict,
        description="Share of a setting's placements that are residential (SEN2 residential "
        "placements), costed at `residential_unit_cost_gbp`",
        unit="share",
    )
    residential_unit_cost_gbp: dict[str, Cost] = P(
        default_factory=dict,
        description="Cost per residential placement per year by setting (day placements cost "
        "`unit_cost_gbp`)",
        unit="GBP per place per year",
    )
    band_multiplier: dict[str, Factor] = P(
        default_factory=dict,
        description="Cost multiplier by complexity band (1 if omitted)",
        unit="ratio",
    )
    need_multiplier: dict[str, Factor] = P(
        default_factory=dict,
        description="Cost multiplier by primary need (1 if omitted)",
        unit="ratio",
    )
    inflation: float = P(
        0.02, "Annual increase in unit costs from the price base", "share per year", ge=-0.1, le=0.5
    )
    transport: Transport = P(
        default_factory=Transport, description="Home-to-school transport", unit="section"
    )
    capital_per_place_gbp: dict[str, Cost] = P(
        default_factory=dict,
        description="Capital cost of one new place by setting",
        unit="GBP per place",
    )
    lead_time_years: dict[str, LeadYears] = P(
        default_factory=dict,
        description="Years from a build decision to opening, by setting",
        unit="years",
    )
    build_unit_places: dict[str, UnitPlaces] = P(
        default_factory=dict,
        description="Places in one whole unit (e.g. 12 for a resource base, 150 for a special school)",
        unit="places",
    )
    other_hnb_spend_gbp: float = P(
        0.0,
        "High-needs spend not driven by placements (outreach, services, hospital education) in the first financial year",
        "GBP per year",
        ge=0,
        le=MAX_MONEY_GBP,
    )
    other_hnb_growth: float = P(
        0.0, "Annual growth of `other_hnb_spend_gbp`", "share per year", ge=-0.5, le=1
    )


# --------------------------------------------------------------------------- finance


class Finance(Strict):
    opening_deficit_gbp: Money = P(
        description="Cumulative DSG deficit at 31 March of the base year (a positive number is a deficit)",
        unit="GBP",
    )
    hnb_income_gbp: Cost = P(
        description="High Needs Block allocation in the first financial year",
        unit="GBP per year",
    )
    hnb_income_growth: float = P(
        0.0, "Annual growth of the HNB allocation", "share per year", ge=-0.5, le=1
    )
    hnb_income_by_year: dict[Year, Cost] = P(
        default_factory=dict,
        description="Known HNB allocations by financial year, replacing the growth path",
        unit="GBP",
    )
    block_transfers_gbp: dict[Year, Money] = P(
        default_factory=dict,
        description="Transfers into the HNB from other DSG blocks by financial year",
        unit="GBP",
    )
    safety_valve_instalments_gbp: dict[Year, Money] = P(
        default_factory=dict, description="DfE Safety Valve payments by financial year", unit="GBP"
    )
    la_contributions_gbp: dict[Year, Money] = P(
        default_factory=dict,
        description="Council contributions towards the deficit by financial year",
        unit="GBP",
    )
    plan_cumulative_deficit_gbp: dict[Year, Money] = P(
        default_factory=dict,
        description="Agreed Safety Valve trajectory: cumulative deficit at 31 March ending each financial year",
        unit="GBP",
    )
    safety_valve_conditional: bool = P(
        False,
        "Pay each Safety Valve instalment only if the deficit is on the trajectory (see "
        "safety_valve_condition); false: every instalment is paid as scheduled",
        "flag",
    )
    safety_valve_condition: Literal["cumulative", "in_year"] = P(
        "cumulative",
        "Test for a conditional instalment of financial year F: 'cumulative' = the deficit at 31 "
        "March ending F-1 is at or below the trajectory for F-1; 'in_year' = the in-year deficit "
        "of F before contributions is at or below the plan's. Years without a trajectory: paid",
        "key",
    )
    statutory_override_end: int | None = P(
        2027,
        "Last financial year (by starting year: 2027 = 2027-28, ending March 2028) the statutory "
        "override keeps the DSG deficit off the council's general fund; after it the deficit "
        "counts against general fund reserves (null: no end)",
        "financial year",
    )
    general_fund_reserves_gbp: float | None = P(
        None,
        "Council general fund reserves the deficit is set against once the override ends",
        "GBP",
        ge=0,
    )
    deficit_interest_rate: float = P(
        0.0,
        "Interest cost to the general fund on the deficit at the start of each financial year "
        "(the cash the council carries)",
        "share per year",
        ge=0,
        le=0.5,
    )


# --------------------------------------------------------------------------- policy


class BuildLimit(Strict):
    max_places_per_year: float | None = P(
        None, "Most new places decided in one year", "places", ge=0, lt=MAX_PLACES
    )
    max_places_total: float | None = P(
        None, "Most new places over the horizon", "places", ge=0, lt=MAX_PLACES
    )
    localities: list[str] | None = P(
        None, "Localities where building is possible (all if omitted)", "keys"
    )


Mode = Literal["hard", "soft"]


class LimitModes(Strict):
    """Whether each policy limit is hard (never breached: children go unmet instead, reported) or
    soft (breached at a penalty where keeping to it costs more; the breach is reported)."""

    max_independent_share: Mode = P("soft", "policy.max_independent_share: hard or soft", "key")
    min_mainstream_share: Mode = P("soft", "policy.min_mainstream_share: hard or soft", "key")
    max_travel_km: Mode = P(
        "hard", "policy.max_travel_km: hard (no longer journeys) or soft (at a penalty)", "key"
    )
    build_limits: Mode = P(
        "hard", "policy.buildable max_places_per_year and max_places_total: hard or soft", "key"
    )
    capital_budget: Mode = P("hard", "policy.capital_budget_gbp: hard or soft", "key")
    soft_penalty_gbp: float | None = P(
        None,
        "Penalty of a soft breach: per place-year beyond a share or travel limit, per place "
        "beyond a build limit (default: half of policy.unmet_penalty_gbp)",
        "GBP",
        ge=0,
    )
    capital_overrun_penalty: float = P(
        1.0,
        "Soft capital budget: extra cost counted per GBP 1 of capital beyond the budget",
        "GBP per GBP",
        ge=0,
    )


class Policy(Strict):
    buildable: dict[str, BuildLimit] = P(
        default_factory=dict,
        description="Settings the optimiser may add places to, with limits",
        unit="section",
    )
    capital_budget_gbp: float | None = P(
        None, "Capital available for new places over the horizon", "GBP", ge=0, le=MAX_MONEY_GBP
    )
    integer_builds: bool = P(
        True,
        "Build in whole units of `costs.build_unit_places` (false: fractional places, an LP)",
        "flag",
    )
    mip_gap: float = P(
        0.01,
        "Whole-unit builds: stop when the plan's cost is within this share of the best possible "
        "(relative gap to the LP or branch-and-bound bound; the gap achieved is reported)",
        "share",
        ge=0,
        le=0.5,
    )
    mip_time_limit_seconds: float = P(
        30.0,
        "Whole-unit builds: most time branch and bound may spend improving the plan rounded from "
        "the LP; the best plan found and its gap are reported (run.time_limit_seconds caps all)",
        "seconds",
        gt=0,
    )
    max_independent_share: float | None = P(
        None,
        "Cap on the share of placed children in independent settings, each year",
        "share",
        ge=0,
        le=1,
    )
    min_mainstream_share: float | None = P(
        None,
        "Floor on the share of placed children in mainstream (KPI 14), each year",
        "share",
        ge=0,
        le=1,
    )
    max_travel_km: float | None = P(
        None, "Longest one-way journey a placement may need", "km", gt=0, le=MAX_KM
    )
    max_provider_localities: int | None = P(
        None,
        "Localities a child may be placed in: home and the nearest others, this many in all "
        "(an LA modelled by planning area keeps the model linear in localities); none = all",
        "localities",
        ge=1,
        le=MAX_LOCALITIES,
    )
    discount_rate: float = P(
        0.035, "Annual discount rate (HM Treasury Green Book)", "share per year", ge=0, le=0.5
    )
    unmet_penalty_gbp: float = P(
        250_000.0,
        "Cost per child-year left without a suitable place (keeps the LP solvable)",
        "GBP per child-year",
        ge=0,
        le=MAX_MONEY_GBP,
    )
    plan_for: float = P(
        0.5,
        "Demand quantile across Monte Carlo paths the plan must serve (0.5 = P50, 0.9 = P90)",
        "quantile",
        gt=0,
        lt=1,
    )
    first_decision_year: Year | None = P(
        None,
        "First academic year (January census year) the optimiser decides placements and builds "
        "for; entrants of earlier years stay as the unmitigated forecast placed them. Default "
        "base_year + 2: the first academic year that starts after the latest January count",
        "year",
    )
    inclusion: list[Inclusion] = P(
        default_factory=list, description="KPI 14 inclusion shifts", unit="rows", max_length=100
    )
    limits: LimitModes = P(
        default_factory=LimitModes,
        description="Which limits are hard (unmet demand instead) or soft (breach at a penalty)",
        unit="section",
    )


# --------------------------------------------------------------------------- statutory process

# A calendar month "YYYY-MM" (the statutory pipeline runs by month).
Month = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
ShareValue = Annotated[float, Field(ge=0, le=1)]  # a share in a year-keyed table
CountValue = Annotated[float, Field(ge=0)]  # a count or rate in a year- or month-keyed table


class ProcessTeam(Strict):
    """A caseworker team on one step: capacity in cases a month = FTE x cases per FTE a month."""

    fte: float = P(0.0, "Caseworker full-time equivalents on this step", "FTE", ge=0)
    cases_per_fte_month: float = P(
        0.0, "Cases one FTE completes a month (throughput)", "cases per FTE per month", ge=0
    )
    fte_growth: float | None = P(
        None,
        "Annual growth of `fte` after the last published year (omitted: as requests, so "
        "staffing keeps pace with them)",
        "share per year",
        ge=-0.5,
        le=1,
    )
    fte_by_month: dict[Month, CountValue] = P(
        default_factory=dict,
        description="FTE from a month on ('YYYY-MM': FTE), replacing `fte` and its growth from "
        "that month",
        unit="FTE",
    )
    history_per_month: dict[int, CountValue] = P(
        default_factory=dict,
        description="Cases completed a month in each published calendar year (SEN2); used "
        "instead of FTE x throughput for those years",
        unit="cases per month",
    )


class BacklogClearance(Strict):
    """Clear N cases by month M: extra assessment capacity spread evenly over the months."""

    cases: float = P(description="Extra assessments to complete", unit="cases", ge=0)
    from_month: Month = P(description="First month of the extra capacity", unit="YYYY-MM")
    by_month: Month = P(description="Last month of the extra capacity", unit="YYYY-MM")
    label: str = P("", "Why this plan exists", "text")


class RequestChange(Strict):
    """A change in requests from a year, e.g. early help or ordinarily available provision."""

    factor: float = P(description="Multiplier on requests received", unit="ratio", ge=0)
    from_year: int = P(description="First calendar year the change applies", unit="year")
    ramp_years: int = P(0, "Years over which the change phases in linearly", "years", ge=0, le=30)
    label: str = P("", "Why this change exists", "text")


class Reviews(Strict):
    """Annual reviews: every plan is due one a year; capacity limits how many are held."""

    team: ProcessTeam = P(
        default_factory=ProcessTeam, description="Review capacity", unit="section"
    )
    overdue_start: float = P(
        0.0, "Overdue reviews open in January of the base year", "reviews", ge=0
    )
    outcome_cease: float = P(0.0, "Share of reviews held that end the plan", "share", ge=0, le=1)
    outcome_amend: float = P(0.0, "Share of reviews held that amend the plan", "share", ge=0, le=1)
    outcome_maintain: float = P(
        1.0, "Share of reviews held that maintain the plan unchanged", "share", ge=0, le=1
    )
    ceased_share: float = P(
        0.08,
        "Plans ceasing a year as a share of the January stock (all reasons); used for the "
        "pipeline's running estimate of the stock",
        "share per year",
        ge=0,
        le=1,
    )

    @model_validator(mode="after")
    def _outcomes_add_up(self) -> Reviews:
        total = self.outcome_cease + self.outcome_amend + self.outcome_maintain
        if abs(total - 1.0) > 1e-3:
            raise ValueError(f"review outcome shares sum to {total:.4f}, not 1")
        return self


class Tribunals(Strict):
    """Appeals to the SEND tribunal, counted as shares of decisions (simple, documented)."""

    appeal_share_refusals: float = P(
        0.0, "Share of refusals to assess that are appealed", "share", ge=0, le=1
    )
    appeal_share_plans: float = P(
        0.0, "Share of plans issued whose content or placement is appealed", "share", ge=0, le=1
    )
    placement_move_share: float = P(
        0.0,
        "Share of plan appeals that move the placement to a more expensive setting",
        "share",
        ge=0,
        le=1,
    )


class Process(Strict):
    """The statutory pipeline: requests -> decision to assess -> assessment -> plan issued, monthly."""

    first_year: int = P(
        description="First calendar year simulated (the published series start)", unit="year"
    )
    requests_history: dict[int, CountValue] = P(
        description="Requests for an EHC needs assessment received in each calendar year (SEN2)",
        unit="requests per year",
    )
    requests_growth: float | None = P(
        None,
        "Annual growth of requests after the last published year (omitted: as the demand "
        "section's new-plan rate, typed `demand.growth` or the growth pooled across LAs with "
        "its taper)",
        "share per year",
        ge=-0.5,
        le=1,
    )
    requests_changes: list[RequestChange] = P(
        default_factory=list, description="Changes in requests from a year", unit="rows"
    )
    refusal_share: float = P(
        description="Share of decisions that refuse to assess", unit="share", ge=0, le=1
    )
    refusal_history: dict[int, ShareValue] = P(
        default_factory=dict,
        description="Refusal share by published calendar year (SEN2), before `refusal_share`",
        unit="share",
    )
    refusal_targets: dict[int, ShareValue] = P(
        default_factory=dict,
        description="Target refusal share from a calendar year on (replaces `refusal_share`)",
        unit="share",
    )
    withdrawn_share: float = P(
        0.0, "Share of requests withdrawn before a decision", "share", ge=0, le=1
    )
    issue_share: float = P(
        description="Share of completed assessments that issue a plan", unit="share", ge=0, le=1
    )
    issue_history: dict[int, ShareValue] = P(
        default_factory=dict,
        description="Issue share by published calendar year (SEN2), before `issue_share`",
        unit="share",
    )
    min_months_to_issue: int = P(
        3,
        "Months from request before a plan can be issued (statutory steps)",
        "months",
        ge=0,
        le=12,
    )
    complex_share: float = P(
        0.0,
        "Share of assessments that wait `complex_extra_months` longer for advice (late even "
        "without a backlog)",
        "share",
        ge=0,
        le=1,
    )
    priority_share: float = P(
        0.0,
        "Share of assessments handled first (urgent cases): on time even behind a backlog",
        "share",
        ge=0,
        le=1,
    )
    complex_extra_months: int = P(
        3, "Extra months a complex assessment takes", "months", ge=0, le=12
    )
    open_decisions_start: float = P(
        0.0, "Requests awaiting a decision in January of `first_year`", "cases", ge=0
    )
    open_assessments_start: float = P(
        0.0, "Assessments open in January of `first_year` (the opening backlog)", "cases", ge=0
    )
    decision: ProcessTeam = P(
        default_factory=ProcessTeam, description="Team deciding whether to assess", unit="section"
    )
    assessment: ProcessTeam = P(
        default_factory=ProcessTeam, description="Team assessing and issuing plans", unit="section"
    )
    backlog_clearance: list[BacklogClearance] = P(
        default_factory=list, description="Backlog-clearance plans", unit="rows"
    )
    reviews: Reviews = P(default_factory=Reviews, description="Annual reviews", unit="section")
    tribunals: Tribunals = P(
        default_factory=Tribunals, description="Tribunal appeals", unit="section"
    )
    issued_history: dict[int, CountValue] = P(
        default_factory=dict,
        description="Plans issued in each calendar year (SEN2): the fit targets, in-sample",
        unit="plans per year",
    )
    within_20_weeks_history: dict[int, ShareValue] = P(
        default_factory=dict,
        description="Share of plans issued within 20 weeks by calendar year (SEN2): fit targets",
        unit="share",
    )


# --------------------------------------------------------------------------- run


class Run(Strict):
    paths: int = P(200, "Monte Carlo paths (1 = deterministic only)", "paths", ge=1, le=1_000_000)
    seed: int = P(
        20250331,
        "Random seed; the same scenario and seed give identical outputs",
        "integer",
        ge=0,
        lt=2**63,
    )
    solver: Literal["highs", "cbc"] = P("highs", "LP solver behind PuLP", "key")
    time_limit_seconds: float = P(
        300.0,
        "Time limit for all the optimiser's solves of one plan together (LP, whole-unit rounding, "
        "branch and bound, duals; HiGHS or CBC); status and gap reached are reported",
        "seconds",
        gt=0,
    )


# --------------------------------------------------------------------------- scenario


class Scenario(Strict):
    meta: Meta = P(description="Name, years and price base", unit="section")
    geography: Geography = P(description="Localities and distances", unit="section")
    population: Population = P(description="0-25 population by locality and age", unit="section")
    demand: Demand = P(description="EHCP demand model", unit="section")
    settings: dict[str, Setting] = P(
        description="Settings where children with plans are educated",
        unit="section",
        max_length=MAX_KEYS,
    )
    bands: dict[str, Band] = P(
        description="Complexity bands and the settings that can meet them",
        unit="section",
        max_length=MAX_KEYS,
    )
    placements: Placements = P(description="Today's placement mix, bands and moves", unit="section")
    capacity: Capacity = P(
        default_factory=Capacity, description="Existing and committed places", unit="section"
    )
    costs: Costs = P(description="Unit, transport and capital costs", unit="section")
    finance: Finance = P(
        description="High Needs Block income and the Safety Valve plan", unit="section"
    )
    policy: Policy = P(
        default_factory=Policy, description="Optimiser limits and levers", unit="section"
    )
    run: Run = P(default_factory=Run, description="Monte Carlo and solver settings", unit="section")
    process: Process | None = P(
        None,
        "Statutory pipeline (requests, assessments, plans issued, reviews); when given, it "
        "supplies the new plans each year instead of the fixed rate",
        "section",
    )
    extends: str | None = P(
        None, "Base scenario file this one extends (resolved before validation)", "path"
    )

    @model_validator(mode="after")
    def _check_references(self) -> Scenario:
        # Collected all at once so a user sees every problem in one pass.
        problems = reference_problems(self)
        if problems:
            raise ValueError("\n".join(f"{path}: {msg}" for path, msg in problems))
        return self

    # Convenience views used across the engine --------------------------------------------
    @property
    def years(self) -> list[int]:
        """Base year then every projected year."""
        return list(range(self.meta.base_year, self.meta.base_year + self.meta.horizon_years + 1))

    @property
    def locality_ids(self) -> list[str]:
        return [loc.id for loc in self.geography.localities]

    @property
    def setting_ids(self) -> list[str]:
        return list(self.settings)


def reference_problems(s: Scenario) -> list[tuple[str, str]]:
    """Cross-field checks pydantic cannot express per field: (key.path, message) pairs."""
    out: list[tuple[str, str]] = []
    locs = [loc.id for loc in s.geography.localities]
    loc_set = set(locs)
    needs = set(s.demand.needs)
    settings = set(s.settings)
    bands = set(s.bands)
    phases = set(PHASES)

    def check_keys(
        path: str, keys: Any, allowed: set[str], what: str, extra: tuple[str, ...] = ()
    ) -> None:
        for k in keys:
            if k not in allowed and k not in extra:
                out.append((f"{path}.{k}", f"unknown {what} '{k}'{_suggest(str(k), allowed)}"))

    def check_share(path: str, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            out.append((path, f"share {value} is outside [0, 1]"))

    def check_sum(path: str, shares: dict[str, float] | list[float]) -> None:
        vals = list(shares.values()) if isinstance(shares, dict) else list(shares)
        for i, v in enumerate(vals):
            key = list(shares)[i] if isinstance(shares, dict) else i
            check_share(f"{path}.{key}", v)
        total = sum(vals)
        if vals and abs(total - 1.0) > 1e-3:
            out.append((path, f"shares sum to {total:.4f}, not 1"))

    if len(loc_set) != len(locs):
        dup = sorted({x for x in locs if locs.count(x) > 1})
        out.append(("geography.localities", f"duplicate locality id(s): {', '.join(dup)}"))
    d = s.geography.distances_km
    if d is None:
        missing = [loc.id for loc in s.geography.localities if loc.lat is None or loc.lon is None]
        if missing:
            out.append(
                (
                    "geography.distances_km",
                    f"give distances_km or lat/lon for every locality (missing: {', '.join(missing)})",
                )
            )
    else:
        check_keys("geography.distances_km", d, loc_set, "locality")
        for row_id in locs:
            row = d.get(row_id)
            if row is None:
                out.append(
                    (
                        f"geography.distances_km.{row_id}",
                        "missing row: the distance table must be square",
                    )
                )
                continue
            check_keys(f"geography.distances_km.{row_id}", row, loc_set, "locality")
            absent = [c for c in locs if c not in row]
            if absent:
                out.append(
                    (
                        f"geography.distances_km.{row_id}",
                        f"missing column(s) {', '.join(absent)}: the table must be square",
                    )
                )
            for c, v in row.items():
                if v < 0:
                    out.append(
                        (f"geography.distances_km.{row_id}.{c}", f"distance {v} is negative")
                    )

    check_keys("population.base_0_25", s.population.base_0_25, loc_set, "locality")
    for lid in locs:
        if lid not in s.population.base_0_25:
            out.append((f"population.base_0_25.{lid}", "missing population for this locality"))
    for k, v in s.population.base_0_25.items():
        if v < 0:
            out.append((f"population.base_0_25.{k}", f"count {v} is negative"))
    check_sum("population.age_shares", s.population.age_shares)
    check_keys(
        "population.growth_by_locality", s.population.growth_by_locality, loc_set, "locality"
    )

    dm = s.demand
    for y, v in dm.history.items():
        if v < 0:
            out.append((f"demand.history.{y}", f"count {v} is negative"))
    for i, row in enumerate(dm.history_detail):
        if row.need is not None and row.need not in needs:
            out.append(
                (
                    f"demand.history_detail.{i}.need",
                    f"unknown need '{row.need}'{_suggest(row.need, needs)}",
                )
            )
        if row.locality is not None and row.locality not in loc_set:
            out.append(
                (
                    f"demand.history_detail.{i}.locality",
                    f"unknown locality '{row.locality}'{_suggest(row.locality, loc_set)}",
                )
            )
    check_sum("demand.stock_age_shares", dm.stock_age_shares)
    check_sum("demand.new_age_shares", dm.new_age_shares)
    check_keys("demand.need_shares", dm.need_shares, needs, "need")
    check_sum("demand.need_shares", dm.need_shares)
    if dm.new_need_shares is not None:
        check_keys("demand.new_need_shares", dm.new_need_shares, needs, "need")
        check_sum("demand.new_need_shares", dm.new_need_shares)
    check_keys("demand.locality_prevalence", dm.locality_prevalence, loc_set, "locality")
    for k, v in dm.locality_prevalence.items():
        if v < 0:
            out.append((f"demand.locality_prevalence.{k}", f"ratio {v} is negative"))
    for age, v in dm.cessation_by_age.items():
        if not 0 <= age <= MAX_AGE:
            out.append((f"demand.cessation_by_age.{age}", f"age {age} is outside 0..{MAX_AGE}"))
        check_share(f"demand.cessation_by_age.{age}", v)
    for i, lev in enumerate(dm.levers):
        if lev.needs:
            check_keys(f"demand.levers.{i}.needs", lev.needs, needs, "need")
        if lev.localities:
            check_keys(f"demand.levers.{i}.localities", lev.localities, loc_set, "locality")
        if lev.ages:
            for a in lev.ages:
                if not 0 <= a <= MAX_AGE:
                    out.append((f"demand.levers.{i}.ages", f"age {a} is outside 0..{MAX_AGE}"))
        if lev.to_year is not None and lev.to_year < lev.from_year:
            out.append((f"demand.levers.{i}.to_year", "to_year is before from_year"))

    for sk, st in s.settings.items():
        check_keys(f"settings.{sk}.phases", st.phases, phases, "phase")
        if st.needs is not None:
            check_keys(f"settings.{sk}.needs", st.needs, needs, "need")
    for bk, b in s.bands.items():
        check_keys(f"bands.{bk}.settings", b.settings, settings, "setting")

    for section, table, inner, inner_what in (
        ("placements.mix", s.placements.mix, settings, "setting"),
        ("placements.band_shares", s.placements.band_shares, bands, "band"),
    ):
        check_keys(section, table, phases, "phase")
        for ph in PHASES:
            if ph not in table:
                out.append((f"{section}.{ph}", "missing phase"))
        for ph, by_need in table.items():
            check_keys(f"{section}.{ph}", by_need, needs, "need", extra=("default",))
            if "default" not in by_need and not needs <= set(by_need):
                out.append((f"{section}.{ph}", "give a `default` row or a row for every need"))
            for nk, shares in by_need.items():
                check_keys(f"{section}.{ph}.{nk}", shares, inner, inner_what)
                check_sum(f"{section}.{ph}.{nk}", shares)
                for key, share in shares.items():
                    # A need may only be sent to a setting designated for it.
                    if share > 0 and inner_what == "setting" and key in settings:
                        served_needs = s.settings[key].needs
                        row_needs = (
                            [nk] if nk != "default" else [n for n in needs if n not in by_need]
                        )
                        wrong = [
                            n
                            for n in row_needs
                            if served_needs is not None and n not in served_needs
                        ]
                        if wrong:
                            out.append(
                                (
                                    f"{section}.{ph}.{nk}.{key}",
                                    f"setting '{key}' is not designated for need(s) "
                                    f"{', '.join(sorted(wrong))}",
                                )
                            )
                    # A child in this phase must be placeable where the share sends it.
                    if share > 0 and ph in phases and key in inner:
                        served = serves_phase(s, key, ph, inner_what)
                        if not served:
                            out.append(
                                (
                                    f"{section}.{ph}.{nk}.{key}",
                                    f"{inner_what} '{key}' has no setting serving phase '{ph}'"
                                    if inner_what == "band"
                                    else f"setting '{key}' does not serve phase '{ph}'",
                                )
                            )
    for ph, by_from in s.placements.movers.items():
        check_keys("placements.movers", [ph], phases, "phase")
        check_keys(f"placements.movers.{ph}", by_from, settings, "setting")
        for fk, to in by_from.items():
            check_keys(f"placements.movers.{ph}.{fk}", to, settings, "setting")
            for tk, v in to.items():
                check_share(f"placements.movers.{ph}.{fk}.{tk}", v)
                if (
                    v > 0
                    and ph in phases
                    and tk in settings
                    and not serves_phase(s, tk, ph, "setting")
                ):
                    out.append(
                        (
                            f"placements.movers.{ph}.{fk}.{tk}",
                            f"setting '{tk}' does not serve phase '{ph}'",
                        )
                    )
            if sum(to.values()) > 1 + 1e-9:
                out.append(
                    (f"placements.movers.{ph}.{fk}", "moves out of a setting exceed 1 per year")
                )

    for ph, chain in s.placements.overflow.items():
        check_keys("placements.overflow", [ph], phases, "phase")
        check_keys(f"placements.overflow.{ph}", chain, settings, "setting")
        for i, sk in enumerate(chain):
            if ph in phases and sk in settings and not serves_phase(s, sk, ph, "setting"):
                out.append(
                    (f"placements.overflow.{ph}.{i}", f"setting '{sk}' does not serve phase '{ph}'")
                )
    check_keys("capacity.growth", s.capacity.growth, settings, "setting")
    for sk, g in s.capacity.growth.items():
        if not -0.5 <= g <= 1.0:
            out.append((f"capacity.growth.{sk}", f"growth {g} is outside [-0.5, 1]"))
    for i, lim in enumerate(s.capacity.market_limits):
        check_keys(f"capacity.market_limits.{i}.settings", lim.settings, settings, "setting")
        check_keys(f"capacity.market_limits.{i}.phases", lim.phases, phases, "phase")
    check_keys("capacity.existing", s.capacity.existing, settings, "setting")
    for sk, by_loc in s.capacity.existing.items():
        check_keys(f"capacity.existing.{sk}", by_loc, loc_set, "locality")
        for lk, v in by_loc.items():
            if v < 0:
                out.append((f"capacity.existing.{sk}.{lk}", f"places {v} is negative"))
    names = {p.name for p in s.capacity.pipeline}
    for name in s.capacity.delays:
        if name not in names:
            out.append(
                (
                    f"capacity.delays.{name}",
                    f"no pipeline project named '{name}'{_suggest(name, names)}",
                )
            )
    for i, p in enumerate(s.capacity.pipeline):
        if p.setting not in settings:
            out.append(
                (
                    f"capacity.pipeline.{i}.setting",
                    f"unknown setting '{p.setting}'{_suggest(p.setting, settings)}",
                )
            )
        if p.locality not in loc_set:
            out.append(
                (
                    f"capacity.pipeline.{i}.locality",
                    f"unknown locality '{p.locality}'{_suggest(p.locality, loc_set)}",
                )
            )

    c = s.costs
    check_keys("costs.unit_cost_gbp", c.unit_cost_gbp, settings, "setting")
    for sk in settings:
        if sk not in c.unit_cost_gbp:
            out.append((f"costs.unit_cost_gbp.{sk}", "missing unit cost for this setting"))
    for path, table, allowed, what in (
        ("costs.band_multiplier", c.band_multiplier, bands, "band"),
        ("costs.need_multiplier", c.need_multiplier, needs, "need"),
        ("costs.transport.share_transported", c.transport.share_transported, settings, "setting"),
        ("costs.transport.extra_km", c.transport.extra_km, settings, "setting"),
        ("costs.capital_per_place_gbp", c.capital_per_place_gbp, settings, "setting"),
        ("costs.lead_time_years", c.lead_time_years, settings, "setting"),
        ("costs.build_unit_places", c.build_unit_places, settings, "setting"),
    ):
        check_keys(path, table, allowed, what)
        for k, v in table.items():
            if v < 0:
                out.append((f"{path}.{k}", f"value {v} is negative"))
    for k, v in c.unit_cost_gbp.items():
        if v < 0:
            out.append((f"costs.unit_cost_gbp.{k}", f"cost {v} is negative"))
    check_keys("costs.unit_cost_by_phase_gbp", c.unit_cost_by_phase_gbp, settings, "setting")
    for sk, by_phase in c.unit_cost_by_phase_gbp.items():
        check_keys(f"costs.unit_cost_by_phase_gbp.{sk}", by_phase, phases, "phase")
        for ph, v in by_phase.items():
            if v < 0:
                out.append((f"costs.unit_cost_by_phase_gbp.{sk}.{ph}", f"cost {v} is negative"))
    for path, table in (
        ("costs.place_funding_gbp", c.place_funding_gbp),
        ("costs.residential_unit_cost_gbp", c.residential_unit_cost_gbp),
        ("costs.residential_share", c.residential_share),
    ):
        check_keys(path, table, settings, "setting")
        for k, v in table.items():
            if v < 0:
                out.append((f"{path}.{k}", f"value {v} is negative"))
    for k, v in c.residential_share.items():
        check_share(f"costs.residential_share.{k}", v)
    for sk, pf in c.place_funding_gbp.items():
        if sk not in settings:
            continue
        day = [
            c.unit_cost_by_phase_gbp.get(sk, {}).get(ph, c.unit_cost_gbp.get(sk, 0.0))
            for ph in s.settings[sk].phases
        ]
        if day and pf > min(day) + 1e-9:
            out.append(
                (
                    f"costs.place_funding_gbp.{sk}",
                    f"place funding {pf:g} exceeds the unit cost {min(day):g} it is part of",
                )
            )
    for k, v in c.transport.share_transported.items():
        check_share(f"costs.transport.share_transported.{k}", v)

    check_keys("policy.buildable", s.policy.buildable, settings, "setting")
    for sk, lim in s.policy.buildable.items():
        if lim.localities:
            check_keys(f"policy.buildable.{sk}.localities", lim.localities, loc_set, "locality")
    fdy, first, last = s.policy.first_decision_year, s.years[1], s.years[-1]
    if fdy is not None and not first <= fdy <= last:
        out.append(
            ("policy.first_decision_year", f"{fdy} is outside the projected years {first}-{last}")
        )
    for i, inc in enumerate(s.policy.inclusion):
        for f in ("from_band", "to_band"):
            b = getattr(inc, f)
            if b not in bands:
                out.append((f"policy.inclusion.{i}.{f}", f"unknown band '{b}'{_suggest(b, bands)}"))
    out.extend(stage_rule_problems(s))
    return out


def stage_rule_problems(s: Scenario) -> list[tuple[str, str]]:
    """Cross-field rules the demand and placement stages rely on, checked before anything runs."""
    out: list[tuple[str, str]] = []
    locs = [loc.id for loc in s.geography.localities]
    pop = {lid: s.population.base_0_25.get(lid, 0.0) for lid in locs}
    total = sum(pop.values())
    if total <= 0:
        out.append(("population.base_0_25", "the 0-25 population is zero: no rates per head"))
    else:
        prev = s.demand.locality_prevalence
        if sum(v / total * prev.get(lid, 1.0) for lid, v in pop.items()) <= 0:
            out.append(("demand.locality_prevalence", "every populated locality has prevalence 0"))
    for a, (new, people) in enumerate(
        zip(s.demand.new_age_shares, s.population.age_shares, strict=False)
    ):
        if new > 0 and people <= 0:
            out.append(
                (
                    f"demand.new_age_shares.{a}",
                    f"new plans at age {a} but population.age_shares.{a} is 0 "
                    "(no one to give them to)",
                )
            )
    end, base = s.demand.growth_end_year, s.meta.base_year
    if end is not None and end < base:
        out.append(("demand.growth_end_year", f"{end} is before meta.base_year {base}"))
    too_big = model_size_problem(s, s.run.paths)
    if too_big:
        out.append(("run.paths", too_big))
    n_t, n_l, n_n, n_s = len(s.years), len(locs), len(s.demand.needs), len(s.settings)
    cells = n_t * n_l * n_l * n_n * len(PHASES) * n_s
    if cells > MAX_PLACEMENT_CELLS:
        out.append(
            (
                "geography.localities",
                f"{n_t} years x {n_l} x {n_l} localities x {n_n} needs x {len(PHASES)} phases x "
                f"{n_s} settings is {cells:.3g} placement cells, more than "
                f"{MAX_PLACEMENT_CELLS:.0e}: use fewer localities, needs or settings",
            )
        )
    return out


def model_size_problem(s: Scenario, paths: int) -> str | None:
    """Why ``paths`` Monte Carlo paths of this scenario would not fit in memory, or None."""
    locs = len(s.geography.localities)
    cells = paths * len(s.years) * len(AGES) * max(len(s.demand.needs), 1) * max(locs, 1)
    if cells <= MAX_MODEL_CELLS:
        return None
    return (
        f"{paths} paths x {len(s.years)} years x {len(AGES)} ages x {len(s.demand.needs)} needs "
        f"x {locs} localities is {cells:.3g} cells, more than {MAX_MODEL_CELLS:.0e}: "
        "use fewer paths"
    )


def serves_phase(s: Scenario, key: str, phase: str, what: str) -> bool:
    """Whether setting ``key`` (or any setting of band ``key``) serves ``phase``."""
    names = s.bands[key].settings if what == "band" else [key]
    return any(n in s.settings and phase in s.settings[n].phases for n in names)


def _suggest(word: str, options: set[str] | list[str]) -> str:
    """A did-you-mean suffix for a misspelt key, or ''."""
    import difflib

    match = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def reference_markdown() -> str:
    """The scenario reference as Markdown tables (one per section), generated from the schema."""
    lines = [
        "# Scenario reference",
        "",
        "Generated by `sendplan schema --markdown` from the schema in `model/scenario.py`; "
        "do not edit by hand. Unknown keys are errors. See docs/decisions/0001 for year labels.",
        "",
    ]
    seen: set[type[BaseModel]] = set()

    def section(model: type[BaseModel], path: str) -> None:
        lines.extend([f"## `{path or '(top level)'}`", ""])
        if model.__doc__ and model is not Scenario:
            lines.extend([model.__doc__.strip().splitlines()[0], ""])
        lines.append("| key | type | default | unit | description |")
        lines.append("| --- | --- | --- | --- | --- |")
        nested: list[tuple[type[BaseModel], str]] = []
        for name, f in model.model_fields.items():
            extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
            unit = str(extra.get("unit", "-"))
            if f.is_required():
                default = "required"
            elif f.default_factory is not None:
                default = "(empty)" if unit not in ("section",) else "(defaults)"
            else:
                default = f"`{f.default!r}`" if isinstance(f.default, str) else f"`{f.default}`"
            tname = _type_name(f.annotation)
            desc = (f.description or "").replace("|", "/")
            lines.append(f"| `{name}` | {tname} | {default} | {unit} | {desc} |")
            inner = nested_model(f.annotation)
            if inner is not None and inner not in seen:
                seen.add(inner)
                sub = f"{path}.{name}" if path else name
                if _is_collection(f.annotation):
                    sub += ".*"
                nested.append((inner, sub))
        lines.append("")
        for inner, sub in nested:
            section(inner, sub)

    section(Scenario, "")
    return "\n".join(lines).rstrip() + "\n"


def _type_name(ann: Any) -> str:
    import typing

    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if ann is type(None):
        return "null"
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (list,):
        return f"list of {_type_name(args[0])}"
    if origin in (dict,):
        return f"map {_type_name(args[0])} → {_type_name(args[1])}"
    if origin is Literal:
        return " / ".join(f"`{a}`" for a in args)
    if args and origin is not None:
        return " or ".join(_type_name(a) for a in args)
    return getattr(ann, "__name__", str(ann))


def nested_model(ann: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``X``, ``list[X]``, ``dict[str, X]``, ``X | None``)."""
    import typing

    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        found = nested_model(arg)
        if found is not None:
            return found
    return None


def _is_collection(ann: Any) -> bool:
    import typing

    if typing.get_origin(ann) in (list, dict):
        return True
    return any(_is_collection(a) for a in typing.get_args(ann))
