"""Progress of long work off a terminal: structured log lines now and then, never a redrawn bar."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from prodcat.trainer.progress import LogProgress, progress

EVERY_S = 30.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_logged_at_most_once_per_interval() -> None:
    clock = FakeClock()
    logged = LogProgress("training", total=100, every_s=EVERY_S, clock=clock)
    with capture_logs() as events:
        for _ in range(10):
            clock.now += EVERY_S / 4
            logged.update()
    assert [e["done"] for e in events if e["event"] == "progress"] == [4, 8]


def test_the_end_of_the_work_is_logged_with_the_count_done() -> None:
    with capture_logs() as events, progress("offers", unit=" offers") as shown:
        shown.update(7)
    assert [(e["task"], e["done"]) for e in events if e["event"] == "progress"] == [("offers", 7)]


def test_the_latest_postfix_rides_along_with_the_progress_line() -> None:
    with capture_logs() as events, progress("training", unit="step", total=3) as shown:
        shown.set_postfix({"loss": "0.5"})
        shown.update()
    assert events[-1]["loss"] == "0.5"


def test_off_a_terminal_no_bar_is_drawn(capsys: pytest.CaptureFixture[str]) -> None:
    with progress("evaluating", unit=" titles", total=50) as shown:
        for _ in range(50):
            shown.update()
    assert "\r" not in capsys.readouterr().err


def test_a_milestone_is_logged_as_its_event() -> None:
    with capture_logs() as events, progress("training", unit="step") as shown:
        shown.note("validation", "step 3: macro-F1 0.9", step=3, macro_f1=0.9)
    assert {"event": "validation", "step": 3, "macro_f1": 0.9, "log_level": "info"} in events


def test_progress_turned_off_logs_no_progress() -> None:
    with capture_logs() as events, progress("training", unit="step", enabled=False) as shown:
        shown.update(5)
    assert not [e for e in events if e["event"] == "progress"]
