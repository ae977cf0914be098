"""The trusted side's own wall clock: hidden tests are trusted code, but what they check comes from
the solver (a huge tensor to loop over, say), so their own time is bounded too.

A `TrustedClock` arms SIGALRM while a test's own code runs and pauses it during calls into the
sandbox (those have their deadlines already). When it fires, the test stops with a `timeout`
verdict. Signals reach only the main thread: elsewhere (a grader in a worker thread) the clock
does nothing and the sandbox's deadlines remain the bound.
"""
from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import Callable

from runner.sandbox.failures import SolverTimeout

# What a grading run may take beyond the submission's total budget and one test's own checks:
# starting the sandbox and collecting the tests.
RUN_MARGIN_S = 60.0


class TrustedCodeTimeout(SolverTimeout):
    """A test's own checks ran past their limit (charged to the submission as `timeout`)."""


class TrustedClock:
    """SIGALRM-based limit on the time a test's own code runs, outside calls into the sandbox."""

    def __init__(self, observer: Callable[[SolverTimeout], None] = lambda failure: None):
        self.observer = observer  # told of the timeout, in case the test swallows the exception
        self._armed = False
        self._left = 0.0
        self._limit = 0.0

    @staticmethod
    def available() -> bool:
        """Whether signals can be used here (only the main thread receives them)."""
        return threading.current_thread() is threading.main_thread()

    @contextlib.contextmanager
    def running(self, limit_s: float):
        """Run a test's body under a limit of `limit_s` seconds of its own time."""
        if not self.available():
            yield
            return
        previous = signal.signal(signal.SIGALRM, self._expired)
        self._limit, self._armed = limit_s, True
        signal.setitimer(signal.ITIMER_REAL, limit_s)
        try:
            yield
        finally:
            self._armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    @contextlib.contextmanager
    def paused(self):
        """Stop the clock while the solver's code runs in the sandbox."""
        if not self._armed:
            yield
            return
        self._left = signal.setitimer(signal.ITIMER_REAL, 0)[0]
        try:
            yield
        finally:
            if self._armed:
                signal.setitimer(signal.ITIMER_REAL, max(self._left, 1e-3))

    def _expired(self, signum, frame):
        if self._armed:
            failure = TrustedCodeTimeout(f"the test's own checks of your results ran past {self._limit:g} s "
                                         "(are the results far larger than asked for?)")
            self.observer(failure)
            signal.setitimer(signal.ITIMER_REAL, 1.0)  # again, should the test catch this one
            raise failure


class RunBudget:
    """The wall clock of a whole grading run: past it, every test not yet run is charged `timeout`."""

    def __init__(self, limit_s: float):
        self.limit_s = limit_s
        self.deadline = time.monotonic() + limit_s

    def check(self) -> None:
        """Raise a `timeout` verdict when the run is past its budget."""
        if time.monotonic() > self.deadline:
            raise TrustedCodeTimeout(f"grading ran past the submission's budget ({self.limit_s:g} s in all)")
