"""More than one consumer-group member per host, for when one Python process is the limit.

`prodcat consume --processes N` starts N member processes (each `prodcat consume` with
its own model copy, `--member-index i`) and supervises them. Each member runs in a session
of its own, so a Ctrl-C at the terminal (SIGINT to the foreground process group) or a
SIGTERM to the whole group reaches the supervisor alone, which passes each signal it gets
on to every member once: one signal drains every member once, as a lone member drains,
and a second one kills them, as it kills a lone member. When one member exits with an
error the others are asked to stop, and the supervisor exits with that member's code.
Kafka's group protocol spreads the partitions over the members.

Being in their own sessions, members would not hear the terminal if the supervisor died
without passing its signal on (`kill -9`); on Linux they are given SIGTERM when it dies.
Under systemd, `KillMode=mixed` keeps systemd's own SIGTERM to the supervisor alone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType

import structlog

log = structlog.get_logger(__name__)

POLL_S = 0.2
# After a member failed, how long the others get to drain before they are killed.
STOP_GRACE_S = 60.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# <linux/prctl.h>
PR_SET_PDEATHSIG = 1


def member_command(argv: Sequence[str], index: int) -> list[str]:
    """The command line of member `index`: the supervisor's own, as a single member."""
    return [
        sys.executable,
        "-m",
        "prodcat.cli",
        *argv,
        "--processes",
        "1",
        "--member-index",
        str(index),
    ]


def supervise(argv: Sequence[str], processes: int) -> int:
    """Runs `processes` members of `prodcat consume <argv>` until all exit; returns the exit code."""
    received: list[int] = []

    def record(signum: int, _frame: FrameType | None) -> None:
        # Only noted here; the loop passes it on, so a member started meanwhile still gets it.
        received.append(signum)

    previous = {s: signal.signal(s, record) for s in STOP_SIGNALS}
    members: list[subprocess.Popen[bytes]] = []
    try:
        for index in range(processes):
            if received:
                break
            members.append(_start(member_command(argv, index)))
        log.info("members_started", pids=[m.pid for m in members])
        return _watch(members, received)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _start(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, env=os.environ.copy(), start_new_session=True, preexec_fn=_die_with(os.getpid())
    )


def _die_with(parent: int) -> Callable[[], None] | None:
    """What a member runs before it starts, on Linux: SIGTERM to it when `parent` dies."""
    if not sys.platform.startswith("linux"):
        return None
    # Loaded here: the child must not load libraries between fork and exec.
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def arrange() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            # The supervisor died before the request took effect.
            os.kill(os.getpid(), signal.SIGTERM)

    return arrange


def _watch(members: list[subprocess.Popen[bytes]], received: list[int]) -> int:
    """Stops the members once per signal received, or once when one fails; the exit code."""
    told = 0
    failed: int | None = None
    kill_at: float | None = None
    while any(m.poll() is None for m in members):
        # A member failing is a stop too: the others drain, and only a further signal kills them.
        while told < max(len(received), int(failed is not None)):
            _signal_all(members, received[told] if told < len(received) else signal.SIGTERM)
            told += 1
        for index, member in enumerate(members):
            code = member.poll()
            if code not in (None, 0) and failed is None:
                failed = _exit_code(code)
                log.error("member_failed", member=index, pid=member.pid, exit_code=code)
                kill_at = time.monotonic() + STOP_GRACE_S
        if kill_at is not None and time.monotonic() >= kill_at:
            for member in members:
                if member.poll() is None:
                    log.error("member_killed", pid=member.pid, grace_s=STOP_GRACE_S)
                    member.kill()
            kill_at = None
        time.sleep(POLL_S)
    codes = [m.returncode for m in members]
    log.info("members_stopped", exit_codes=codes)
    if failed is not None:
        return failed
    return next((_exit_code(code) for code in codes if code != 0), 0)


def _signal_all(members: list[subprocess.Popen[bytes]], signum: int) -> None:
    for member in members:
        # Popen sends nothing to a member that has exited.
        member.send_signal(signum)


def _exit_code(code: int) -> int:
    # A member killed by a signal reports -signum; a shell reports 128 + signum.
    return code if code > 0 else 128 - code
