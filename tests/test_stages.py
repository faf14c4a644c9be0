"""Stage reports reach the listener of the run that made them, and only that one."""

from __future__ import annotations

import threading

from model.stages import listening, report_stage, unreported


def test_a_listener_hears_the_stages_reported_inside_its_block_only() -> None:
    heard: list[str] = []
    report_stage("before")
    with listening(heard.append):
        report_stage("LP relaxation")
        unreported(report_stage, "the no-build LP beside it")
        with listening(None):  # None keeps the listener in place
            report_stage("rounding")
    report_stage("after")
    assert heard == ["LP relaxation", "rounding"]


def test_two_runs_at_once_each_hear_only_their_own_stages() -> None:
    """Two app sessions on one server run in two threads: each session's progress line shows its
    own run's stages, never the other's (the listener belongs to the thread that set it)."""
    both_listening = threading.Barrier(2)
    both_reported = threading.Barrier(2)
    heard: dict[str, list[str]] = {"a": [], "b": []}

    def session(name: str) -> None:
        with listening(heard[name].append):
            both_listening.wait()  # both listeners are in place before either reports
            report_stage(f"{name}: optimiser")
            both_reported.wait()
            report_stage(f"{name}: costs and finance")

    threads = [threading.Thread(target=session, args=(n,)) for n in heard]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert heard == {
        "a": ["a: optimiser", "a: costs and finance"],
        "b": ["b: optimiser", "b: costs and finance"],
    }
