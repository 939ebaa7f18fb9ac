"""Progress of long work: a tqdm bar on a terminal, periodic structured log lines elsewhere.

Off a terminal a bar is not lines at all (carriage returns, one redraw per update), and
breaks the rule that every stderr line there is one JSON object.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import structlog
from tqdm import tqdm

log = structlog.get_logger(__name__)

LOG_EVERY_S = 30.0


class Progress(Protocol):
    def update(self, n: int = 1) -> None: ...

    def set_postfix(self, values: dict[str, str]) -> None: ...

    def note(self, event: str, text: str, **fields: Any) -> None:
        """A milestone: `text` printed above a bar, or `event` logged with `fields`."""


class _Bar:
    def __init__(self, bar: tqdm[Any]) -> None:
        self._bar = bar

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def set_postfix(self, values: dict[str, str]) -> None:
        self._bar.set_postfix(values)

    def note(self, event: str, text: str, **fields: Any) -> None:
        tqdm.write(text)


class LogProgress:
    """`progress` events at most every `every_s` seconds, and one when the work ends."""

    def __init__(
        self,
        desc: str,
        *,
        total: int | None,
        initial: int = 0,
        every_s: float = LOG_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._desc, self._total, self._done = desc, total, initial
        self._every_s, self._clock = every_s, clock
        self._started = self._last = clock()
        self._postfix: dict[str, str] = {}

    def update(self, n: int = 1) -> None:
        self._done += n
        if self._clock() - self._last >= self._every_s:
            self.emit()

    def set_postfix(self, values: dict[str, str]) -> None:
        self._postfix = dict(values)

    def note(self, event: str, text: str, **fields: Any) -> None:
        log.info(event, **fields)

    def emit(self) -> None:
        self._last = self._clock()
        elapsed = self._last - self._started
        log.info(
            "progress",
            task=self._desc,
            done=self._done,
            **({"total": self._total} if self._total is not None else {}),
            per_second=round(self._done / elapsed, 2) if elapsed > 0 else 0.0,
            **self._postfix,
        )


class _NoBar:
    """Progress not shown; milestones still logged."""

    def update(self, n: int = 1) -> None:
        """Not shown."""

    def set_postfix(self, values: dict[str, str]) -> None:
        """Not shown."""

    def note(self, event: str, text: str, **fields: Any) -> None:
        log.info(event, **fields)


@contextmanager
def progress(
    desc: str, *, unit: str, total: int | None = None, initial: int = 0, enabled: bool = True
) -> Iterator[Progress]:
    """A bar when stderr is a terminal, else a `LogProgress`; no progress when not `enabled`."""
    if not enabled:
        yield _NoBar()
    elif sys.stderr.isatty():
        with tqdm(total=total, initial=initial, desc=desc, unit=unit) as bar:
            yield _Bar(bar)
    else:
        logged = LogProgress(desc, total=total, initial=initial)
        try:
            yield logged
        finally:
            logged.emit()
