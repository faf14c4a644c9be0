"""Reports benchmark: what report.xlsx and report.html add to a default run.

ratio = (time to write the reports) / (time of the run without reports: ``run_scenario`` plus the
tables), both measured in this run on the embedded Devon default at its own paths. Target: 0.25 or
less (reports add at most 25%). Also prints each report's time, and the optional full workbook
(``--full-workbook``: tables.xlsx, every table in constant-memory mode), which is not in the ratio.
Run: ``python -m benchmarks reports``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model import reports  # noqa: E402
from model.engine import run_scenario, write_outputs  # noqa: E402
from model.io import load_scenario  # noqa: E402

TARGET = 0.25


def main(argv: list[str] | None = None) -> dict[str, float]:
    resolved = load_scenario(None)
    t0 = time.perf_counter()
    res = run_scenario(resolved)
    run_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_outputs(res, Path(tmp) / "tables", reports=False)
        tables_s = time.perf_counter() - t0
        folder = Path(tmp)
        t0 = time.perf_counter()
        reports.write_xlsx(res, folder / "report.xlsx")
        xlsx_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        text, _ = reports.render_html(res)
        (folder / "report.html").write_text(text, encoding="utf-8")
        html_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        reports.write_tables_xlsx(res, folder / "tables.xlsx")
        full_s = time.perf_counter() - t0
        xlsx_kb = (folder / "report.xlsx").stat().st_size / 1024
        full_mb = (folder / "tables.xlsx").stat().st_size / 1024**2
    cells = sum(df.size for df in res.tables.values())
    base = run_s + tables_s
    ratio = (xlsx_s + html_s) / base
    print(
        f"Devon default, {res.summary['paths']} paths; load average {os.getloadavg()[0]:.2f} "
        "(other work slows every figure)"
    )
    print(
        f"run without reports: {base:.2f} s (run_scenario {run_s:.2f} s + tables {tables_s:.2f} s)"
    )
    print(f"report.xlsx: {xlsx_s:.2f} s ({xlsx_kb:,.0f} KB); report.html: {html_s:.2f} s")
    print(
        f"ratio (reports / run without reports): {ratio:.3f} (target {TARGET} or less: "
        f"{'met' if ratio <= TARGET else 'not met'})"
    )
    print(
        f"optional --full-workbook tables.xlsx ({cells:,} cells, {full_mb:.1f} MB): {full_s:.2f} s, "
        "not in the ratio"
    )
    return {"ratio": ratio, "run_s": base, "xlsx_s": xlsx_s, "html_s": html_s, "full_s": full_s}


if __name__ == "__main__":
    main(sys.argv[1:])
