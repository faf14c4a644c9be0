"""Which stage a run is in, for a progress display: stages report, the run's listener hears.

The engine and the solver call ``report_stage("...")`` as they go; the batch runner (or the app)
installs a listener with ``listening(fn)`` so a long integer solve shows what it is doing. The
listener belongs to the context that installed it (a thread, or the app's session), so two runs
at once, e.g. two app sessions on one server, each hear only their own. With no listener,
reporting costs nothing.

A run can also be cancelled from outside (the app's background refinement of a plan the user
has moved on from): inside ``cancellable(event)``, the next stage report after ``event`` is set
raises RunCancelled, and branch and bound stops at its next check (``cancelled``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from threading import Event

_listener: ContextVar[Callable[[str], None] | None] = ContextVar(
    "sendplan_stage_listener", default=None
)
# work running beside the stage a user is watching (a second thread) reports nothing
_muted: ContextVar[bool] = ContextVar("sendplan_stage_reports_muted", default=False)
_cancel: ContextVar[Event | None] = ContextVar("sendplan_run_cancel", default=None)


class RunCancelled(Exception):
    """The run was cancelled by its caller (``cancellable``); nothing it made is kept."""


def report_stage(text: str) -> None:
    """Tell the listener (if any) what the run is doing now, e.g. "LP relaxation"; a cancelled
    run stops here (RunCancelled)."""
    if cancelled():
        raise RunCancelled(text)
    listener = _listener.get()
    if listener is not None and not _muted.get():
        try:
            listener(text)
        except Exception:  # a broken display must never fail a run
            pass


@contextmanager
def listening(fn: Callable[[str], None] | None) -> Iterator[None]:
    """Send stage reports to ``fn`` inside the block (None: keep the current listener)."""
    if fn is None:
        yield
        return
    token = _listener.set(fn)
    try:
        yield
    finally:
        _listener.reset(token)


def unreported(fn: Callable[..., object], *args: object) -> object:
    """``fn(*args)`` with its stage reports muted (in this context only: work on a second thread
    must not overwrite the stage the display shows)."""
    token = _muted.set(True)
    try:
        return fn(*args)
    finally:
        _muted.reset(token)


def cancel_event() -> Event | None:
    """The event that cancels this context's run (``cancellable``), if any: a solver's callback,
    which HiGHS may call on another thread, checks it directly."""
    return _cancel.get()


def cancelled() -> bool:
    """Whether this context's run has been cancelled (see ``cancellable``)."""
    event = _cancel.get()
    return event is not None and event.is_set()


@contextmanager
def cancellable(event: Event) -> Iterator[None]:
    """Inside the block, setting ``event`` cancels the run at its next stage report."""
    token = _cancel.set(event)
    try:
        yield
    finally:
        _cancel.reset(token)
