"""Graceful shutdown on SIGINT/SIGTERM for long-running loops."""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType


def install_stop_signals(stop: Callable[[], None]) -> None:
    """SIGINT/SIGTERM ask the loop to finish in-flight work and commit; a second signal kills."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        signal.signal(signum, signal.SIG_DFL)
        stop()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
