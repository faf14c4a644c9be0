"""Constants of the demand stage's exact Poisson sampler (inverse CDF in float32).

Kept apart from ``model.demand_kernel`` (which imports numba) so that ``model.demand`` can name them
without importing numba, and the kernel without importing the demand stage.
"""

from __future__ import annotations

POISSON_DIRECT_MAX = 12.0  # means above this use numpy's Poisson sampler, below it the inverse CDF
POISSON_DENSE_STEPS = 6  # inverse-CDF steps every draw takes before the few still going walk on
POISSON_MAX_STEPS = 80  # float32 guard: P(X > 80 | mean <= 12) is below 1e-30
