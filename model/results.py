"""What a scenario run produces: the stages' typed results, the tables and summary.json built from
them. The engine fills these; the writers (``engine.write_outputs``, ``model.reports``) and the
app read them. Imports no stage at run time (the stage result types only for type checking).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from .io import ResolvedScenario

if TYPE_CHECKING:  # pragma: no cover
    from .demand import DemandResult
    from .finance import VariantResult
    from .montecarlo import PathRuns
    from .placements import PlacementsResult
    from .process import ProcessResult
    from .sufficiency import SavingResult, SufficiencyResult

# Output tables in the order people read them; each is written as <name>.csv (or .parquet).
TABLE_ORDER = (
    "demand",
    "demand_flows",
    "placements",
    "sufficiency",
    "builds",
    "costs",
    "finance",
    "process",
)


@dataclass
class StageResults:
    """Each stage's typed result, in the order the engine runs them."""

    process: ProcessResult | None  # the statutory pipeline (scenarios with a process section)
    demand: DemandResult
    placements: PlacementsResult  # placement demand and the unmitigated plan
    sufficiency: SufficiencyResult  # the optimised plan, builds, sufficiency and the LP
    paths: PathRuns | None  # Monte Carlo paths through the allocation (None with one path)
    unmitigated: VariantResult  # costs and finance of the unmitigated plan
    optimised: VariantResult  # costs and finance of the optimised plan
    saving: SavingResult  # the optimised plan's saving, by cause


@dataclass
class Results:
    """Everything one scenario run produced: tidy tables, headline summary, optional LP export."""

    resolved: ResolvedScenario
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    mps_text: str | None = None
    # in-memory stage results for the app and reports, by name (the same objects as ``stages``)
    artefacts: dict[str, Any] = field(default_factory=dict)
    stages: StageResults | None = None
