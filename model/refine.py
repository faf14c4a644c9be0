"""Second runs that refine a first answer, one at a time in the background (the app's levers).

A lever's run answers first with the whole-unit plan rounded from the LP, branch and bound
deferred (``run_scenario(..., branch_and_bound=False)``, status provisional) where that plan is
outside ``policy.mip_gap``; the run with branch and bound then goes here, keyed by what it
answers, while the user reads the first answer (decision 0004). One worker: a refinement is
CPU-bound, and a second one at once would only slow both and the next lever's first answer.
A refinement the user has moved on from is cancelled (``stages.cancellable``): queued, it never
starts; running, branch and bound stops at its next check and the run at its next stage.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from .stages import cancellable


class Refinements:
    """Background refinements by key; at most one runs at a time, the others wait in order.

    The worker is a daemon thread: a server stopped while a refinement runs stops at once (a
    refinement keeps nothing but in memory), where a pool's thread would hold the exit until
    branch and bound's time limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, tuple[Future[Any], threading.Event]] = {}
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None

    def _work(self) -> None:
        while True:
            future, fn = self._queue.get()
            if not future.set_running_or_notify_cancel():  # cancelled while queued
                continue
            try:
                future.set_result(fn())
            except BaseException as e:  # handed to whoever looks at the future
                future.set_exception(e)

    def submit(self, key: str, fn: Callable[[], Any]) -> Future[Any]:
        """``fn()`` run in the background, cancellable, unless ``key``'s job is queued or running."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not job[0].done():
                return job[0]
            event = threading.Event()

            def run() -> Any:
                with cancellable(event):
                    return fn()

            future: Future[Any] = Future()
            self._jobs[key] = (future, event)
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._work, name="sendplan-refine", daemon=True
                )
                self._worker.start()
            self._queue.put((future, run))
            return future

    def get(self, key: str) -> Future[Any] | None:
        """``key``'s latest job, done or not (None if there never was one)."""
        with self._lock:
            job = self._jobs.get(key)
        return None if job is None else job[0]

    def cancel(self, key: str) -> None:
        """Stop ``key``'s job: a queued one never starts, a running one stops at its next check."""
        with self._lock:
            job = self._jobs.pop(key, None)
        if job is not None:
            job[1].set()
            job[0].cancel()

    def cancel_all(self) -> None:
        """Stop every job (the app's tests end each test's refinements with it)."""
        with self._lock:
            keys = list(self._jobs)
        for key in keys:
            self.cancel(key)

    def wait(self, timeout: float | None = None) -> None:
        """Until every job submitted so far is done (tests and benchmarks: the CPU is free)."""
        with self._lock:
            futures = [f for f, _ in self._jobs.values()]
        for f in futures:
            try:
                f.result(timeout)
            except Exception:  # a cancelled or failed refinement: its first answer stands
                pass


REFINEMENTS = Refinements()  # the server's: every app session's refinements share one worker
