"""The pooled prior shipped beside the SEN2 panel is the one the panel gives."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from model import pooling
from model.sources import sen2


def test_shipped_priors_are_the_panels_own_estimates() -> None:
    """Every origin the panel allows is shipped, and each equals a fresh estimate to the 12
    significant digits the table keeps (a rebuilt panel with stale priors fails here; the last
    bits of numpy's sums differ between CPUs)."""
    shipped = pooling._shipped()
    panel = sen2.panel()
    last = int(panel.loc[panel["measure"] == "plans", "year"].max())
    assert sorted(shipped) == list(range(pooling.FIRST_YEAR + 1, last + 1))
    for as_of, prior in shipped.items():
        fresh = asdict(pooling.estimate(panel, as_of))
        kept = {
            k: float(pooling.FLOAT_FORMAT % v) if isinstance(v, float) else v
            for k, v in fresh.items()
        }
        assert asdict(prior) == kept, as_of


def test_pooled_prior_reads_the_shipped_table_and_clamps_like_estimate() -> None:
    """Origins after the last January read the last row (as ``estimate`` clamps them); one before
    the second January is an error, as before."""
    shipped = pooling._shipped()
    assert pooling.pooled_prior(max(shipped) + 5) == shipped[max(shipped)]
    assert pooling.pooled_prior(min(shipped)) == shipped[min(shipped)]
    with pytest.raises(ValueError, match="two Januaries"):
        pooling.pooled_prior(pooling.FIRST_YEAR)
