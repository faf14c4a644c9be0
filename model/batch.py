"""Batch runs: many scenarios (files, globs, folders, or a sweep grid) serially, in parallel
processes or on a dask.distributed cluster, with one comparison table at the end.

Each scenario is isolated: the worker receives only a file path and ``--set`` overrides (pickle-
friendly), loads and runs the scenario itself, writes its own folder atomically and returns a small
``Outcome``; a bad file or an error in one scenario never stops the others. Outcomes are put back in
input order, so ``comparison.csv`` is byte-identical whatever the number of jobs or the scheduler.
"""

from __future__ import annotations

import glob
import itertools
import multiprocessing
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .io import DEFAULT_NAME, ScenarioError, parse_yaml_text, slug_for

OK, FAILED, BAD_INPUT = "ok", "failed", "bad_input"
SCENARIO_SUFFIXES = (".yaml", ".yml")
MAX_SLUG_BYTES = 200  # folder names stay well under the 255-byte limit of common file systems
SCHEDULER_TIMEOUT = "10s"  # how long to try to reach a dask scheduler before giving up


class SchedulerUnavailable(OSError):
    """The dask scheduler given by address cannot be reached (the CLI exits 2: bad input)."""


@dataclass(frozen=True)
class ScenarioSpec:
    """One scenario to run: a file (None = the embedded default) with overrides, and its folder.

    Only strings and tuples, so it pickles cheaply to a worker process or a dask worker.
    """

    path: str | None
    overrides: tuple[str, ...] = ()
    slug: str = ""
    swept: tuple[tuple[str, Any], ...] = ()  # (key.path, value) of a sweep combination

    @property
    def label(self) -> str:
        """How messages name this scenario: its file, plus the swept values in a sweep."""
        where = self.path if self.path is not None else f"embedded:{DEFAULT_NAME}"
        if self.swept:  # the swept overrides, as typed (0.10 stays 0.10)
            where += " [" + ", ".join(self.overrides[-len(self.swept) :]) + "]"
        return where


@dataclass(frozen=True)
class RunOptions:
    """Options applied to every scenario of a batch (the CLI's --paths, --seed, ...)."""

    paths: int | None = None
    seed: int | None = None
    solver: str | None = None
    export_lp: bool = False
    fmt: str = "csv"
    reports: bool | str = True  # "full": also tables.xlsx (--full-workbook)


@dataclass
class Outcome:
    """What one scenario produced: status, folder, its comparison row and a one-line reason."""

    spec: ScenarioSpec
    status: str  # "ok" | "failed" (error while running) | "bad_input" (file or values invalid)
    folder: str | None = None
    row: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    problems: list[str] = field(
        default_factory=list
    )  # bad input: one "file: key.path: message" each
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """The messages a person sees for this scenario: one per problem, naming the file."""
        if self.status == OK:
            return [f"{self.spec.label}: wrote {self.folder}"]
        if self.status == BAD_INPUT:
            tail = f" [{self.spec.label.split(' [', 1)[1]}" if self.spec.swept else ""
            return [p + tail for p in self.problems] or [f"{self.spec.label}: {self.error}"]
        return [f"{self.spec.label}: run failed: {self.error}"]


@dataclass
class BatchResult:
    """Every outcome in input order, the comparison table and where it was written."""

    out: Path
    outcomes: list[Outcome]
    comparison: pd.DataFrame
    swept: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == OK]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == FAILED]

    @property
    def bad_input(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == BAD_INPUT]

    @property
    def exit_code(self) -> int:
        """The CLI contract: 1 if a scenario failed while running, else 2 if any input was bad, else 0."""
        if self.failed:
            return 1
        return 2 if self.bad_input else 0


# --------------------------------------------------------------------------- inputs


def _one_line(text: str) -> str:
    return " | ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _safe_slug(text: str) -> str:
    """A file-system-safe folder name (letters, digits, ``. _ = , + -``), short enough for any FS."""
    safe = re.sub(r"[^A-Za-z0-9._=,+-]+", "-", text).strip("-.") or "scenario"
    if len(safe.encode()) > MAX_SLUG_BYTES:
        import hashlib

        digest = hashlib.sha256(text.encode()).hexdigest()[:10]
        safe = safe[: MAX_SLUG_BYTES - 12] + "--" + digest
    return safe


def expand_inputs(items: Sequence[str | Path | None]) -> tuple[list[str | None], list[Outcome]]:
    """Scenario files from files, globs and folders (every ``*.yaml``/``*.yml`` directly inside).

    Returns the files in the order given (each once) and a bad-input outcome for every item that
    matches nothing. ``None`` stands for the embedded default. Missing plain files are kept: loading
    them reports the problem like any other bad file.
    """
    files: list[str | None] = []
    bad: list[Outcome] = []
    seen: set[str] = set()

    def add(f: str | None) -> None:
        key = "\0default" if f is None else os.path.abspath(f)
        if key not in seen:
            seen.add(key)
            files.append(f)

    for item in items:
        if item is None:
            add(None)
            continue
        text = str(item)
        p = Path(text)
        if p.is_dir():
            found = sorted(
                str(q) for q in p.iterdir() if q.suffix.lower() in SCENARIO_SUFFIXES and q.is_file()
            )
            if not found:
                bad.append(_bad(text, f"folder holds no scenario files (*.yaml, *.yml): {text}"))
            for f in found:
                add(f)
        elif glob.has_magic(text) and not p.exists():
            found = sorted(glob.glob(text, recursive=True))
            found = [f for f in found if Path(f).is_file()]
            if not found:
                bad.append(_bad(text, "no file matches this pattern"))
            for f in found:
                add(f)
        else:
            add(text)
    return files, bad


def _bad(item: str, message: str) -> Outcome:
    return Outcome(
        ScenarioSpec(item, slug=""), BAD_INPUT, error=message, problems=[f"{item}: {message}"]
    )


def specs_for_files(
    files: Sequence[str | None], overrides: Sequence[str] = ()
) -> list[ScenarioSpec]:
    """One spec per file with a unique folder name (``x``, ``x-2``, ... when two files share a stem)."""
    specs: list[ScenarioSpec] = []
    used: set[str] = set()
    for f in files:
        slug = _unique(slug_for(f) if f is not None else DEFAULT_NAME, used)
        specs.append(ScenarioSpec(f, tuple(overrides), slug))
    return specs


def _unique(slug: str, used: set[str]) -> str:
    out, k = slug, 2
    while out in used:
        out, k = f"{slug}-{k}", k + 1
    used.add(out)
    return out


def split_values(text: str) -> list[str]:
    """Split ``a,b,c`` on top-level commas (commas inside [...], {...} or quotes belong to a value)."""
    parts: list[str] = []
    depth, quote, cur = 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


_GRID_RE = re.compile(r"^([A-Za-z_][\w]*(?:\.[\w-]+)*)=(.*)$", re.S)


def parse_grid(items: Sequence[str]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """``--grid key.path=v1,v2`` items as (key, [(raw text, parsed value), ...]); ScenarioError if bad."""
    from .io import Problem

    grid: list[tuple[str, list[tuple[str, Any]]]] = []
    keys: set[str] = set()
    for item in items:
        m = _GRID_RE.match(item.strip())
        if not m:
            raise ScenarioError([Problem("--grid", "", f"'{item}' is not key.path=v1,v2,...")])
        key, raw = m.group(1), m.group(2)
        if key in keys:
            raise ScenarioError([Problem("--grid", key, "this key is swept twice")])
        keys.add(key)
        raws = split_values(raw)
        if any(r == "" for r in raws):
            raise ScenarioError([Problem("--grid", key, f"empty value in '{raw}'")])
        values = [(r, parse_yaml_text(r, f"--grid {key}")) for r in raws]
        grid.append((key, values))
    return grid


def sweep_specs(
    base: str | None,
    grid: Sequence[tuple[str, Sequence[tuple[str, Any]]]],
    overrides: Sequence[str] = (),
) -> list[ScenarioSpec]:
    """The Cartesian product of the grid over one base scenario, a folder per combination named by
    its values (``base__demand.growth=0.08__policy.max_independent_share=0.05``). Grid values apply
    after the ``--set`` overrides, so a swept key always takes its swept value."""
    stem = slug_for(base) if base is not None else DEFAULT_NAME
    keys = [k for k, _ in grid]
    used: set[str] = set()
    specs: list[ScenarioSpec] = []
    for combo in itertools.product(*(vals for _, vals in grid)):
        sets = tuple(f"{k}={raw}" for k, (raw, _) in zip(keys, combo, strict=True))
        name = "__".join([stem, *(f"{k}={raw}" for k, (raw, _) in zip(keys, combo, strict=True))])
        specs.append(
            ScenarioSpec(
                base,
                (*overrides, *sets),
                _unique(_safe_slug(name), used),
                tuple((k, v) for k, (_, v) in zip(keys, combo, strict=True)),
            )
        )
    return specs


# --------------------------------------------------------------------------- one scenario


def run_one(spec: ScenarioSpec, out: str, options: RunOptions) -> Outcome:
    """Load, run and write one scenario; never raises (the outcome carries any failure).

    This is the unit of work a process pool or dask worker executes: top level, picklable arguments.
    """
    from .engine import run_scenario
    from .io import load_scenario
    from .reports import comparison_row

    t0 = time.perf_counter()
    try:
        resolved = load_scenario(spec.path, list(spec.overrides))
    except ScenarioError as e:
        return Outcome(
            spec,
            BAD_INPUT,
            error=_one_line(e.problems[0]) if e.problems else "invalid scenario",
            problems=[str(p) for p in e.problems],
            seconds=time.perf_counter() - t0,
        )
    except Exception as e:  # unreadable in a way io did not foresee: still bad input, one line
        return Outcome(
            spec,
            BAD_INPUT,
            error=f"{type(e).__name__}: {_one_line(str(e))}",
            problems=[f"{spec.label}: cannot load: {type(e).__name__}: {_one_line(str(e))}"],
            seconds=time.perf_counter() - t0,
        )
    if spec.slug:
        resolved.slug = spec.slug
    row: dict[str, Any] = {"scenario": resolved.scenario.meta.name, "slug": resolved.slug,
                           "source": resolved.source}  # fmt: skip
    try:
        results = run_scenario(
            resolved,
            paths=options.paths,
            seed=options.seed,
            solver=options.solver,
            export_lp=options.export_lp,
        )
        folder = _write(results, Path(out), options)
        row = comparison_row(results.summary, results.tables)
        warnings = list(results.summary.get("report_warnings") or [])
    except Exception as e:  # isolate: one scenario's error is its own outcome, not the batch's
        if os.environ.get("SENDPLAN_DEBUG"):
            traceback.print_exc()
        return Outcome(
            spec,
            FAILED,
            row=row,
            error=f"{type(e).__name__}: {_one_line(str(e))}",
            seconds=time.perf_counter() - t0,
        )
    return Outcome(spec, OK, str(folder), row, warnings=warnings, seconds=time.perf_counter() - t0)


def _write(results: Any, out: Path, options: RunOptions) -> Path:
    """write_outputs with the report switch when the engine supports it."""
    import inspect

    from .engine import write_outputs

    if "reports" in inspect.signature(write_outputs).parameters:
        return write_outputs(results, out, fmt=options.fmt, reports=options.reports)
    return write_outputs(results, out, fmt=options.fmt)


# --------------------------------------------------------------------------- executors


def _pool_context() -> multiprocessing.context.BaseContext:
    """Worker processes start from a clean forkserver with the engine preloaded (cheap, and safe
    with the progress bar's thread in the parent); spawn where forkserver does not exist."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["model.batch", "model.engine", "model.reports"])
        return ctx
    return multiprocessing.get_context("spawn")


def _serial(
    specs: Sequence[ScenarioSpec], out: str, options: RunOptions
) -> Iterator[tuple[int, Outcome]]:
    for i, spec in enumerate(specs):
        yield i, run_one(spec, out, options)


def _process_pool(
    specs: Sequence[ScenarioSpec], out: str, options: RunOptions, jobs: int
) -> Iterator[tuple[int, Outcome]]:
    """Run in a process pool. A worker that dies (killed for memory, a crash in native code) breaks
    the whole pool, so the scenarios it left unfinished are re-run each in a process of its own
    (still ``jobs`` at a time): only the one that brought the pool down fails."""
    unfinished: list[int] = []
    with ProcessPoolExecutor(max_workers=min(jobs, len(specs)), mp_context=_pool_context()) as pool:
        futures = {pool.submit(run_one, spec, out, options): i for i, spec in enumerate(specs)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=futures.__getitem__):
                i = futures[fut]
                try:
                    yield i, fut.result()
                except BrokenProcessPool:
                    unfinished.append(i)
                except Exception as e:  # pickling or other pool errors: this scenario only
                    yield i, _failed(specs[i], e)
            if unfinished:  # the pool is broken: every pending future fails the same way
                unfinished.extend(futures[f] for f in pending)
                break
    if unfinished:
        yield from _isolated(sorted(unfinished), specs, out, options, jobs)


def _isolated(
    indices: Sequence[int], specs: Sequence[ScenarioSpec], out: str, options: RunOptions, jobs: int
) -> Iterator[tuple[int, Outcome]]:
    """One single-worker pool per scenario, ``jobs`` at a time: a death blames exactly one."""
    queue = list(indices)
    running: dict[Future[Outcome], tuple[int, ProcessPoolExecutor]] = {}
    try:
        while queue or running:
            while queue and len(running) < jobs:
                i = queue.pop(0)
                ex = ProcessPoolExecutor(max_workers=1, mp_context=_pool_context())
                running[ex.submit(run_one, specs[i], out, options)] = (i, ex)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: running[f][0]):
                i, ex = running.pop(fut)
                try:
                    outcome = fut.result()
                except BrokenProcessPool:
                    outcome = Outcome(
                        specs[i], FAILED, error="worker process died (out of memory or a crash)"
                    )
                except Exception as e:
                    outcome = _failed(specs[i], e)
                ex.shutdown(wait=True)
                yield i, outcome
    finally:
        for _, ex in running.values():
            ex.shutdown(wait=False, cancel_futures=True)


def _failed(spec: ScenarioSpec, e: BaseException) -> Outcome:
    return Outcome(spec, FAILED, error=f"{type(e).__name__}: {_one_line(str(e))}")


def _dask(
    specs: Sequence[ScenarioSpec], out: str, options: RunOptions, scheduler: Any, jobs: int | None
) -> Iterator[tuple[int, Outcome]]:
    """Run on dask.distributed: ``scheduler`` is an address, ``"local"`` (a LocalCluster of ``jobs``
    single-threaded worker processes) or a ``distributed.Client``. Workers write their folders
    themselves, so OUT must be on a file system every worker sees."""
    import uuid

    from distributed import as_completed

    batch_id = uuid.uuid4().hex[:12]  # keys unique even when a Client serves several batches
    with _dask_client(scheduler, jobs) as client:
        index: dict[str, int] = {}
        futures = []
        for i, spec in enumerate(specs):
            fut = client.submit(
                run_one, spec, out, options, key=f"sendplan-{batch_id}-{i}", pure=False
            )
            index[fut.key] = i
            futures.append(fut)
        for fut in as_completed(futures):
            i = index[fut.key]
            try:
                yield i, fut.result()
            except Exception as e:  # KilledWorker, lost connection: this scenario only
                yield i, _failed(specs[i], e)
            finally:
                fut.release()


@contextmanager
def _dask_client(scheduler: Any, jobs: int | None) -> Iterator[Any]:
    import logging

    from distributed import Client, LocalCluster

    if not isinstance(scheduler, str):  # a Client the caller owns
        yield scheduler
        return
    if scheduler == "local":
        n = jobs or os.cpu_count() or 1
        with (
            LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
    except (OSError, ValueError, TypeError) as e:  # refused, timed out, or not an address at all
        raise SchedulerUnavailable(
            f"cannot connect to the dask scheduler at {scheduler!r}: {type(e).__name__}: {e}"
        ) from None
    with client:
        yield client


# --------------------------------------------------------------------------- the batch


class _Progress:
    """A rich progress bar of done / running / failed on stderr, or nothing when not a terminal."""

    def __init__(self, total: int, workers: int, enabled: bool | None):
        if enabled is None:
            enabled = sys.stdout.isatty() and sys.stderr.isatty()
        self.enabled = enabled and total > 0
        self.total, self.workers = total, workers
        self.done = self.failed = 0
        self._progress: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]scenarios"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("running {task.fields[running]}  failed {task.fields[failed]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(
                "run", total=self.total, running=self._running(), failed=0
            )
        return self

    def _running(self) -> int:
        return min(self.workers, self.total - self.done)

    def update(self, outcome: Outcome) -> None:
        self.done += 1
        self.failed += outcome.status != OK
        if self._progress is not None:
            self._progress.update(
                self._task, completed=self.done, running=self._running(), failed=self.failed
            )

    def print(self, line: str, err: bool) -> None:
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, file=sys.stderr if err else sys.stdout, flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


def run_batch(
    specs: Iterable[ScenarioSpec | str | Path | None],
    out: str | Path,
    *,
    jobs: int | None = 1,
    scheduler: Any = None,
    fmt: str = "csv",
    paths: int | None = None,
    seed: int | None = None,
    solver: str | None = None,
    export_lp: bool = False,
    reports: bool | str = True,
    overrides: Sequence[str] = (),
    progress: bool | None = None,
    echo: Callable[[str, bool], None] | None = None,
) -> BatchResult:
    """Run many scenarios and write ``OUT/<slug>/`` for each plus ``OUT/comparison.{csv,xlsx,html}``.

    ``specs``: ScenarioSpec objects, or files / globs / folders / None (the embedded default), to
    which ``overrides`` apply. ``jobs``: parallel processes (1 = in this process). ``scheduler``: a
    dask.distributed address, ``"local"`` or a Client (then ``jobs`` sizes a local cluster).
    ``progress``: the rich bar (None = only when stdout and stderr are terminals). ``echo(line,
    is_error)`` receives each scenario's message lines (default: printed, errors to stderr).
    """
    items = list(specs)
    pre_bad: list[Outcome] = []
    if not all(isinstance(s, ScenarioSpec) for s in items):
        loose = [s for s in items if not isinstance(s, ScenarioSpec)]
        files, pre_bad = expand_inputs(loose)  # type: ignore[arg-type]
        given = [s for s in items if isinstance(s, ScenarioSpec)]
        used = {s.slug for s in given}
        extra = specs_for_files(files, overrides)
        extra = [ScenarioSpec(s.path, s.overrides, _unique(s.slug, used)) for s in extra]
        items = [*given, *extra]
    spec_list: list[ScenarioSpec] = items  # type: ignore[assignment]
    fmt = fmt.lower()
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format must be csv or parquet, not {fmt!r}")
    options = RunOptions(paths, seed, solver, export_lp, fmt, reports)
    out_dir = Path(out).resolve()  # absolute: workers may run elsewhere
    out_dir.mkdir(parents=True, exist_ok=True)
    swept = list(dict.fromkeys(k for s in spec_list for k, _ in s.swept))

    results: list[Outcome | None] = [None] * len(spec_list)
    if scheduler is not None:
        runner = _dask(spec_list, str(out_dir), options, scheduler, jobs)
        workers = jobs or os.cpu_count() or 1
    elif (jobs or 1) > 1 and len(spec_list) > 1:
        runner = _process_pool(spec_list, str(out_dir), options, int(jobs or 1))
        workers = int(jobs or 1)
    else:
        runner = _serial(spec_list, str(out_dir), options)
        workers = 1

    def say(line: str, err: bool, bar: _Progress) -> None:
        if echo is not None:
            echo(line, err)
        else:
            bar.print(line, err)

    with _Progress(len(spec_list), workers, progress) as bar:
        for o in pre_bad:
            for line in o.lines():
                say(line, True, bar)
        for i, outcome in runner:
            results[i] = outcome
            bar.update(outcome)
            for line in outcome.lines():
                say(line, outcome.status != OK, bar)
            for w in outcome.warnings:
                say(f"{outcome.spec.label}: warning: {w}", True, bar)

    outcomes = [o for o in results if o is not None]
    comparison = comparison_table(outcomes, swept)
    problems = [
        (o.spec.label, o.status, o.error or "; ".join(o.problems))
        for o in [*pre_bad, *outcomes]
        if o.status != OK
    ]
    from .reports import write_comparison

    warnings = write_comparison(comparison, problems, out_dir, swept)
    return BatchResult(out_dir, [*pre_bad, *outcomes], comparison, swept, warnings)


def comparison_table(outcomes: Sequence[Outcome], swept: Sequence[str] = ()) -> pd.DataFrame:
    """One row per scenario that loaded (ran, or failed while running), in input order; scenarios
    whose input was bad have no row (no scenario to describe) and are listed as problems instead."""
    from .reports import HEADLINE, ID_COLUMNS, TRAILING_COLUMNS

    columns = [*ID_COLUMNS, *swept, *HEADLINE, *TRAILING_COLUMNS]
    rows = []
    for o in outcomes:
        if o.status == BAD_INPUT:
            continue
        row = dict.fromkeys(columns)
        row.update({k: v for k, v in o.row.items() if k in row})
        row["slug"] = row.get("slug") or o.spec.slug
        row["source"] = row.get("source") or o.spec.path or f"embedded:{DEFAULT_NAME}"
        row["status"] = o.status
        row["error"] = o.error or None
        for k, v in o.spec.swept:
            row[k] = v
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)
