"""Background refinements: one at a time, one per key, cancellable queued or running."""

from __future__ import annotations

import threading

import pytest

from model.refine import Refinements
from model.stages import RunCancelled, report_stage


def test_one_job_per_key_runs_one_at_a_time_in_order() -> None:
    r = Refinements()
    gate, order = threading.Event(), []

    def job(name: str) -> str:
        gate.wait(10)
        order.append(name)
        return name

    a = r.submit("a", lambda: job("a"))
    assert r.submit("a", lambda: job("again")) is a  # queued or running: not submitted twice
    b = r.submit("b", lambda: job("b"))
    assert not a.done() and not b.done()
    gate.set()
    assert a.result(10) == "a" and b.result(10) == "b"
    assert order == ["a", "b"] and r.get("a").done()
    # done: the next submission runs again
    assert r.submit("a", lambda: job("second")).result(10) == "second"


def test_a_cancelled_job_never_starts_queued_and_stops_at_its_next_stage_running() -> None:
    r = Refinements()
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def running() -> None:
        started.set()
        release.wait(10)
        report_stage("after the wait")  # a cancelled run stops at its next stage report
        ran.append("running finished")

    first = r.submit("first", running)
    queued = r.submit("queued", lambda: ran.append("queued ran"))
    started.wait(10)
    r.cancel("queued")
    r.cancel("first")
    release.set()
    with pytest.raises(RunCancelled):
        first.result(10)
    assert queued.cancelled()
    r.wait(10)
    assert ran == []
    assert r.get("first") is None and r.get("queued") is None  # forgotten: may be queued again


def test_a_running_refinement_does_not_hold_the_process_at_exit() -> None:
    """A server stopped mid-refinement exits at once (the worker is a daemon): here a job that
    would run a minute does not keep a process that ends from ending."""
    import subprocess
    import sys

    code = (
        "import time, threading\n"
        "from model.refine import Refinements\n"
        "r = Refinements()\n"
        "started = threading.Event()\n"
        "r.submit('k', lambda: (started.set(), time.sleep(60)))\n"
        "started.wait(10)\n"
        "print('leaving')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.strip() == "leaving"
