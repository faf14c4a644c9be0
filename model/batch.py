"""Batch runs: many scenarios (files, globs, folders, or a sweep grid) serially, in parallel
processes or on a dask.distributed cluster, with one comparison table at the end.

Each scenario is isolated: the worker receives only a file path and ``--set`` overrides (pickle-
friendly), loads and runs the scenario itself, writes its own folder atomically and returns a small
``Outcome``; a bad file or an error in one scenario never stops the others. Outcomes are put back in
input order, so ``comparison.csv`` is byte-identical whatever the number of jobs or the scheduler.
"""

from __future__ import annotations

import dataclasses
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

import numpy as np
import pandas as pd

from .io import DEFAULT_NAME, ScenarioError, parse_yaml_text, slug_for
from .stages import listening

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
    stage_queue: Any = None  # a multiprocessing queue the progress bar reads stage reports from


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
    # Per-path figures at the horizon (plans, HNB spend over the forecast), so a batch can sum
    # paths across LAs: a total's quantiles are not the sum of the LAs' quantiles.
    horizon: dict[str, list[float]] = field(default_factory=dict)
    la_name: str = ""

    def lines(self) -> list[str]:
        """The messages a person sees for this scenario: one per problem, naming the file."""
        if self.status == OK:
            return [f"{self.spec.label}: wrote {self.folder}{_solver_note(self.row)}"]
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
    comparison_written: bool = True

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


def _solver_note(row: dict[str, Any]) -> str:
    """How the optimiser finished, for the run output: " (optimiser: optimal, gap 0.69%)"."""
    status = row.get("solver_status")
    if not status:
        return ""
    gap = row.get("mip_gap")
    gap_text = f", gap {float(gap):.2%}" if isinstance(gap, int | float) else ""
    return f" (optimiser {row.get('solver') or ''}: {status}{gap_text})".replace(" :", ":")


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
    from .io import load_scenario

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
    from .scenario import model_size_problem

    too_big = model_size_problem(resolved.scenario, options.paths or resolved.scenario.run.paths)
    if too_big:
        return Outcome(
            spec,
            BAD_INPUT,
            error=f"--paths: {too_big}",
            problems=[f"{spec.label}: --paths: {too_big}"],
            seconds=time.perf_counter() - t0,
        )
    if spec.slug:
        resolved.slug = spec.slug
    with listening(_stage_sender(options.stage_queue, spec.label)):
        return _run_loaded(spec, out, options, resolved, t0)


def _stage_sender(queue: Any, label: str) -> Callable[[str], None] | None:
    """Stage reports of a scenario run in a worker process, sent to the parent's progress bar."""
    if queue is None:
        return None
    return lambda text: queue.put_nowait(f"{label}: {text}")


def _run_loaded(
    spec: ScenarioSpec, out: str, options: RunOptions, resolved: Any, t0: float
) -> Outcome:
    from .engine import run_scenario
    from .reports import comparison_row

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
        from .alerts import warning_lines

        horizon = horizon_paths(results)
        # what the run found (limits breached, unmet places, ...), then reports not written
        warnings = warning_lines(results.summary)
        warnings += list(results.summary.get("report_warnings") or [])
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
    return Outcome(
        spec,
        OK,
        str(folder),
        row,
        warnings=warnings,
        seconds=time.perf_counter() - t0,
        horizon=horizon,
        la_name=resolved.scenario.meta.la_name,
    )


def horizon_paths(results: Any) -> dict[str, list[float]]:
    """Plans at the horizon and unmitigated HNB spend over the forecast, one value per Monte
    Carlo path (the paths finance keeps), for totals across scenarios; {} with one path."""
    from .montecarlo import path_indices

    demand = results.artefacts.get("demand")
    ps = getattr(demand, "path_stock", None)
    if ps is None or np.asarray(ps).shape[0] < 2:
        return {}
    ps = np.asarray(ps)
    idx = path_indices(ps.shape[0])
    out = {"plans": ps[idx, -1].sum(axis=(1, 2, 3), dtype=np.float64).tolist()}
    spend = results.artefacts.get("unmitigated_path_hnb_spend")
    if spend is not None and np.asarray(spend).shape[0] == len(idx):
        out["hnb_spend_gbp"] = np.asarray(spend, dtype=np.float64).sum(axis=1).tolist()
    return out


def _write(results: Any, out: Path, options: RunOptions) -> Path:
    """write_outputs with the report switch when the engine supports it."""
    import inspect

    from .engine import write_outputs

    if "reports" in inspect.signature(write_outputs).parameters:
        return write_outputs(results, out, fmt=options.fmt, reports=options.reports)
    return write_outputs(results, out, fmt=options.fmt)


# --------------------------------------------------------------------------- executors


WATCHDOG_SECONDS = 1.0  # how often a worker checks that the batch that started it is alive


def _end_with_parent(batch_pid: int) -> None:
    """Pool initializer: end this worker as soon as the batch process ``batch_pid`` dies (even by
    kill -9), so no worker runs on for nobody.

    A worker's parent is multiprocessing's fork server, which itself stays alive while workers
    do, so a daemon thread watches the batch process directly: through a pidfd where Linux has
    one (readable when the process exits, immune to process-id reuse), else by polling its id.
    """
    import select
    import threading

    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(batch_pid)
        except OSError:
            pidfd = None

    def gone() -> bool:
        if pidfd is not None:
            return bool(select.select([pidfd], [], [], WATCHDOG_SECONDS)[0])
        time.sleep(WATCHDOG_SECONDS)
        try:
            os.kill(batch_pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def watch() -> None:
        while not gone():
            pass
        os._exit(1)

    if pidfd is None:
        try:
            os.kill(batch_pid, 0)
        except ProcessLookupError:
            os._exit(1)
    threading.Thread(target=watch, name="sendplan-batch-watchdog", daemon=True).start()


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
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(specs)),
        mp_context=_pool_context(),
        initializer=_end_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
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
                ex = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=_pool_context(),
                    initializer=_end_with_parent,
                    initargs=(os.getpid(),),
                )
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
                TextColumn("[dim]{task.fields[stage]}"),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(
                "run", total=self.total, running=self._running(), failed=0, stage=""
            )
        return self

    def _running(self) -> int:
        return min(self.workers, self.total - self.done)

    def update(self, outcome: Outcome) -> None:
        self.done += 1
        self.failed += outcome.status != OK
        if self._progress is not None:
            running = self._running()
            self._progress.update(
                self._task,
                completed=self.done,
                running=running,
                failed=self.failed,
                **({} if running else {"stage": ""}),  # all done: no step to show
            )

    def stage(self, text: str) -> None:
        """Show what a scenario is doing now (e.g. its solver step) beside the bar."""
        if self._progress is not None:
            self._progress.update(self._task, stage=text if len(text) <= 90 else text[:89] + "…")

    def print(self, line: str, err: bool) -> None:
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, file=sys.stderr if err else sys.stdout, flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


@contextmanager
def _stage_feed(bar: _Progress, runner_kind: str) -> Iterator[Any]:
    """While the bar shows: in this process, stage reports go straight to it; from worker
    processes, through a queue a thread drains (yields the queue, or None). Dask: no stages."""
    if not bar.enabled or runner_kind == "dask":
        yield None
        return
    if runner_kind == "serial":
        with listening(bar.stage):
            yield None
        return
    import queue as queue_mod
    import threading

    manager = multiprocessing.Manager()
    q = manager.Queue()
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            try:
                bar.stage(q.get(timeout=0.2))
            except queue_mod.Empty:
                continue
            except (EOFError, OSError):  # the manager has gone: nothing more to show
                return

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    try:
        yield q
    finally:
        stop.set()
        t.join(timeout=1.0)
        manager.shutdown()


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
    overwrite: bool = False,
) -> BatchResult:
    """Run many scenarios and write ``OUT/<slug>/`` for each plus ``OUT/comparison.{csv,xlsx,html}``.

    ``specs``: ScenarioSpec objects, or files / globs / folders / None (the embedded default), to
    which ``overrides`` apply. ``jobs``: parallel processes (1 = in this process). ``scheduler``: a
    dask.distributed address, ``"local"`` or a Client (then ``jobs`` sizes a local cluster).
    ``progress``: the rich bar (None = only when stdout and stderr are terminals). ``echo(line,
    is_error)`` receives each scenario's message lines (default: printed, errors to stderr).

    ``comparison.*`` is written only when at least one scenario ran (ok, or failed while running),
    and never replaces an earlier comparison in OUT with more rows unless ``overwrite`` is set.
    Temporary folders left in OUT by killed runs are removed first.
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
    made = _make_out(out_dir, str(out))
    from .io import remove_stale_temps

    remove_stale_temps(out_dir)
    swept = list(dict.fromkeys(k for s in spec_list for k, _ in s.swept))

    results: list[Outcome | None] = [None] * len(spec_list)
    if scheduler is not None:
        runner_kind, workers = "dask", jobs or os.cpu_count() or 1
    elif (jobs or 1) > 1 and len(spec_list) > 1:
        runner_kind, workers = "pool", int(jobs or 1)
    else:
        runner_kind, workers = "serial", 1

    def make_runner(opts: RunOptions) -> Iterator[tuple[int, Outcome]]:
        if runner_kind == "dask":
            return _dask(spec_list, str(out_dir), opts, scheduler, jobs)
        if runner_kind == "pool":
            return _process_pool(spec_list, str(out_dir), opts, workers)
        return _serial(spec_list, str(out_dir), opts)

    def say(line: str, err: bool, bar: _Progress) -> None:
        if echo is not None:
            echo(line, err)
        else:
            bar.print(line, err)

    with _Progress(len(spec_list), workers, progress) as bar, _stage_feed(bar, runner_kind) as q:
        if q is not None:
            options = dataclasses.replace(options, stage_queue=q)
        runner = make_runner(options)
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
    warnings: list[str] = []
    written = False
    if not comparison.empty:  # else no scenario ran: an earlier comparison stays as it was
        older = _comparison_rows(out_dir / "comparison.csv")
        if older > len(comparison) and not overwrite:
            warnings.append(
                f"comparison.csv, .xlsx and .html kept: the earlier comparison in {out_dir} has "
                f"{older} rows and this batch {len(comparison)} (use --overwrite to replace it)"
            )
        else:
            from .reports import write_comparison

            warnings = write_comparison(comparison, problems, out_dir, swept)
            written = True
    _drop_if_empty(out_dir, made)
    return BatchResult(out_dir, [*pre_bad, *outcomes], comparison, swept, warnings, written)


def _make_out(out_dir: Path, shown: str) -> Path | None:
    """Create OUT (and missing parents); returns the topmost folder this made (None: OUT was there).
    Raises OSError naming ``--out`` where OUT is a file or cannot be made."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise OSError(f"--out {shown}: not a folder (a file of that name is there)")
        return None
    top = out_dir
    while not top.parent.exists():
        top = top.parent
    try:
        out_dir.mkdir(parents=True)
    except OSError as e:
        raise OSError(f"--out {shown}: cannot create the folder: {e.strerror or e}") from e
    return top


def _drop_if_empty(out_dir: Path, made: Path | None) -> None:
    """Remove the folders ``_make_out`` made where nothing was written in them (a batch of bad
    input only leaves the file system as it was)."""
    if made is None:
        return
    folder = out_dir
    while True:
        try:
            folder.rmdir()  # only an empty folder goes
        except OSError:
            return
        if folder == made:
            return
        folder = folder.parent


def _comparison_rows(path: Path) -> int:
    """Rows of an existing comparison.csv (0 if there is none or it cannot be read)."""
    try:
        return len(pd.read_csv(path))
    except (OSError, ValueError, pd.errors.ParserError):
        return 0


def comparison_table(outcomes: Sequence[Outcome], swept: Sequence[str] = ()) -> pd.DataFrame:
    """One row per scenario that loaded (ran, or failed while running), in input order; scenarios
    whose input was bad have no row (no scenario to describe) and are listed as problems instead."""
    from .reports import HEADLINE, ID_COLUMNS, TRAILING_COLUMNS

    columns = [*ID_COLUMNS, *swept, *HEADLINE, *SPEND_BANDS, *TRAILING_COLUMNS]
    rows = []
    for o in outcomes:
        if o.status == BAD_INPUT:
            continue
        row = dict.fromkeys(columns)
        row.update({k: v for k, v in o.row.items() if k in row})
        row.update(_spend_bands(o.horizon.get("hnb_spend_gbp")))
        row["slug"] = row.get("slug") or o.spec.slug
        row["source"] = row.get("source") or o.spec.path or f"embedded:{DEFAULT_NAME}"
        row["status"] = o.status
        row["error"] = o.error or None
        for k, v in o.spec.swept:
            row[k] = v
        rows.append(row)
    total = total_row(outcomes, columns)
    if total is not None:
        rows.append(total)
    return pd.DataFrame(rows, columns=columns)


SPEND_BANDS = (
    "hnb_spend_unmitigated_gbp_p10",
    "hnb_spend_unmitigated_gbp_p50",
    "hnb_spend_unmitigated_gbp_p90",
)
# Plain sums across LAs (each is a deterministic figure, so the sum is exact).
ADDITIVE = (
    "plans_base",
    "total_cost_unmitigated_gbp",
    "total_cost_optimised_gbp",
    "saving_gbp",
    "places_built",
    "capital_cost_gbp",
    "unmet_places",
)


def _spend_bands(paths: Sequence[float] | None) -> dict[str, float]:
    if not paths:
        return {}
    q = np.percentile(np.asarray(paths, dtype=np.float64), [10, 50, 90])
    return dict(zip(SPEND_BANDS, (float(x) for x in q), strict=True))


def total_row(outcomes: Sequence[Outcome], columns: Sequence[str]) -> dict[str, Any] | None:
    """The batch total when it holds two or more different LAs (e.g. `sendplan init --all`).

    Bands come from summing the LAs' figures path by path, then taking P10/P50/P90 of the sums.
    Every LA runs with the same seed, so path k carries the same standardised growth and rate
    shocks in every LA: the total treats that uncertainty as national (common to all LAs), not
    as independent LA by LA (which would give a narrower band). None when the LAs' years or path
    counts differ, or a run has no paths to sum.
    """
    ok = [o for o in outcomes if o.status == OK]
    names = [o.la_name for o in ok]
    if len(ok) < 2 or "" in names or len(set(names)) != len(names):
        return None
    keys = ("base_year", "horizon_year", "paths", "seed")
    if any(len({o.row.get(k) for o in ok}) != 1 for k in keys):
        return None
    plans = [o.horizon.get("plans") for o in ok]
    if any(not p for p in plans) or len({len(p) for p in plans if p}) != 1:
        return None
    row: dict[str, Any] = dict.fromkeys(columns)
    first = ok[0].row
    row.update({k: first.get(k) for k in (*keys, "horizon_financial_year")})
    row.update(
        scenario=f"Total of {len(ok)} LAs", slug="total", status="total", source="(sum of rows)"
    )
    if len(ok) == len(_release_las()):
        row["scenario"] = f"England (total of all {len(ok)} LAs)"
    total_plans = np.sum(np.asarray(plans, dtype=np.float64), axis=0)
    p10, p50, p90 = np.percentile(total_plans, [10, 50, 90])
    row.update(plans_horizon=float(p50), plans_horizon_p10=float(p10), plans_horizon_p90=float(p90))
    for k in ADDITIVE:
        vals = [o.row.get(k) for o in ok]
        if all(isinstance(v, int | float) and v == v for v in vals):
            row[k] = float(sum(vals))
    spend = [o.horizon.get("hnb_spend_gbp") for o in ok]
    if all(spend) and len({len(x) for x in spend if x}) == 1:
        row.update(_spend_bands(np.sum(np.asarray(spend, dtype=np.float64), axis=0).tolist()))
    return row


def _release_las() -> list[str]:
    """Current LA codes of the shipped SEN2 release (to label a complete national total)."""
    from .sources import sen2

    return list(sen2.authorities()["area_code"])
