"""Progress of long work, the same for every command: a live display on a terminal, timestamped lines on stderr
in a log or a pipe (a background job shows that it moves), nothing with ``--quiet``.

The CLI sets the level once (``breastseg -q`` / ``-v``); library code asks for a :func:`status` (named steps) or a
:func:`bar` (counted work) and never decides how they are shown. In lines mode work that ends within
:data:`QUIET_START_S` seconds prints nothing (a quick command, or one refused at once, keeps stderr to its result
or its one-line error); longer work prints the step it is in once it has run that long, then at most one line every
:data:`LINE_INTERVAL_S` seconds and, for a counted task, its last one, with the elapsed time and the time left at
the rate so far (``-v``: every step and update at once)::

    breastseg [02:31] fold 1 (410 train, 130 validation): 12/60 (20 %), about 10:04 left; loss 0.412 …
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

#: seconds between two progress lines of one task in a log
LINE_INTERVAL_S = 30.0
#: work shorter than this prints no progress line in a log (with ``-v``: every line at once)
QUIET_START_S = 5.0


class Verbosity(IntEnum):
    """How much progress a command reports on stderr: ``QUIET`` none, ``NORMAL`` a live display on a terminal and
    lines every :data:`LINE_INTERVAL_S` s elsewhere, ``VERBOSE`` every step and every update as a line."""

    QUIET = 0
    NORMAL = 1
    VERBOSE = 2


_state: dict[str, Any] = {"level": Verbosity.NORMAL, "live": None, "started": time.monotonic()}


def set_verbosity(level: Verbosity | int, live: bool | None = None) -> None:
    """Set the level for this process; ``live``: force (``True``) or forbid (``False``) the terminal display
    (default: live when stderr is a terminal and the level is not verbose)."""
    _state["level"] = Verbosity(level)
    _state["live"] = live
    _state["started"] = time.monotonic()


def verbosity() -> Verbosity:
    """The current level (see :func:`set_verbosity`)."""
    return Verbosity(_state["level"])


def _live() -> bool:
    forced = _state["live"]
    if forced is not None:
        return bool(forced)
    return verbosity() == Verbosity.NORMAL and sys.stderr.isatty()


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def say(text: str) -> None:
    """One progress line on stderr (not with ``--quiet``), stamped with the time since the command started."""
    if verbosity() > Verbosity.QUIET:
        print(f"breastseg [{_clock(time.monotonic() - _state['started'])}] {text}", file=sys.stderr, flush=True)


@contextmanager
def status(text: str) -> Iterator[Callable[[str], None]]:
    """Named steps of one piece of work: yields ``update(text)`` for each new step (a spinner on a terminal, one
    line per new step elsewhere, nothing when quiet)."""
    if verbosity() == Verbosity.QUIET:
        yield lambda _text: None
        return
    if _live():
        from rich.console import Console

        with Console(stderr=True).status(text) as shown:
            yield lambda step: shown.update(step)
        return
    if verbosity() == Verbosity.VERBOSE:
        last = [text]
        say(text)

        def update(step: str) -> None:
            if step != last[0]:
                last[0] = step
                say(step)

        yield update
        return
    watcher = _StepWatcher(text)
    watcher.start()
    try:
        yield watcher.update
    finally:
        watcher.stop()


class _StepWatcher(threading.Thread):
    """Prints the current step of a :func:`status` once it has run :data:`QUIET_START_S` seconds, and again every
    :data:`LINE_INTERVAL_S` seconds while it lasts (a daemon: it never keeps the process alive)."""

    def __init__(self, text: str) -> None:
        super().__init__(daemon=True)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._step, self._since, self._said = text, time.monotonic(), -math.inf

    def update(self, step: str) -> None:
        with self._lock:
            if step != self._step:
                self._step, self._since, self._said = step, time.monotonic(), -math.inf

    def run(self) -> None:
        while not self._done.wait(min(0.25, QUIET_START_S)):
            with self._lock:
                now = time.monotonic()
                due = now - self._since >= QUIET_START_S and now - self._said >= LINE_INTERVAL_S
                if due:
                    self._said = now
                    step = self._step
            if due:
                say(step)

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=1.0)


class Bar:
    """A counted task (see :func:`bar`); :meth:`update` takes rich's arguments: ``completed`` or ``advance``, a
    new ``total`` or ``description``, and ``info`` (a short text shown after the count)."""

    def __init__(self, description: str, total: int | None, completed: int = 0) -> None:
        self.description, self.total, self.completed, self.info = description, total, completed, ""
        self._first = completed
        self._started = time.monotonic()
        self._last_line = -math.inf
        self._rich: tuple[Progress, TaskID] | None = None

    def update(
        self,
        completed: int | None = None,
        total: int | None = None,
        advance: int = 0,
        description: str | None = None,
        info: str | None = None,
    ) -> None:
        if total is not None:
            self.total = total
        if description is not None:
            self.description = description
        if info is not None:
            self.info = info
        self.completed = (completed if completed is not None else self.completed) + advance
        if self._rich is not None:
            shown, task = self._rich
            shown.update(task, completed=self.completed, total=self.total, description=self.description, info=self.info)
        elif verbosity() > Verbosity.QUIET:
            self._line()

    def _line(self) -> None:
        now = time.monotonic()
        finished = self.total is not None and self.completed >= self.total
        if verbosity() < Verbosity.VERBOSE:
            if now - self._started < QUIET_START_S and self._last_line == -math.inf:
                return  # quick work: no line at all
            if not finished and now - self._last_line < LINE_INTERVAL_S:
                return
        self._last_line = now
        count = f"{self.completed}"
        if self.total:
            count += f"/{self.total} ({100 * self.completed / self.total:.0f} %)"
        done_here = self.completed - self._first
        if finished:
            count += f", done in {_clock(now - self._started)}"
        elif self.total and done_here > 0:
            left = (now - self._started) / done_here * (self.total - self.completed)
            count += f", about {_clock(left)} left"
        say(f"{self.description}: {count}" + (f"; {self.info}" if self.info else ""))


@contextmanager
def bar(description: str, total: int | None = None, completed: int = 0) -> Iterator[Bar]:
    """Counted work: yields a :class:`Bar` to :meth:`~Bar.update` (a bar with the time left on a terminal, lines
    in a log, nothing when quiet)."""
    shown = Bar(description, total, completed)
    if verbosity() == Verbosity.QUIET or not _live():
        yield shown
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as live:
        task = live.add_task(description, total=total, completed=completed, info="")
        shown._rich = (live, task)
        yield shown
