"""More than one consumer-group member per host, for when one Python process is the limit.

`prodcat consume --processes N` starts N member processes (each `prodcat consume` with
its own model copy, `--member-index i`) and supervises them: SIGINT and SIGTERM are
forwarded to every member, which drains and commits as a lone member would; when one
member exits with an error the others are asked to stop, and the supervisor exits with
that member's code. Kafka's group protocol spreads the partitions over the members.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

import structlog

log = structlog.get_logger(__name__)

POLL_S = 0.2
# After a member failed, how long the others get to drain before they are killed.
STOP_GRACE_S = 60.0


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
    members = [subprocess.Popen(member_command(argv, i), env=os.environ.copy()) for i in range(processes)]
    log.info("members_started", pids=[m.pid for m in members])

    def forward(signum: int, _frame: FrameType | None) -> None:
        for member in members:
            if member.poll() is None:
                member.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    failed: int | None = None
    try:
        while any(m.poll() is None for m in members):
            for index, member in enumerate(members):
                code = member.poll()
                if code not in (None, 0) and failed is None:
                    # A member killed by a signal reports -signum; a shell reports 128 + signum.
                    failed = code if code > 0 else 128 - code
                    log.error("member_failed", member=index, pid=member.pid, exit_code=code)
                    forward(signal.SIGTERM, None)
                    _kill_after(members, STOP_GRACE_S)
            time.sleep(POLL_S)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    codes = [m.returncode for m in members]
    log.info("members_stopped", exit_codes=codes)
    if failed is not None:
        return failed
    return next((code if code > 0 else 128 - code for code in codes if code != 0), 0)


def _kill_after(members: list[subprocess.Popen[bytes]], grace_s: float) -> None:
    deadline = time.monotonic() + grace_s
    for member in members:
        try:
            member.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("member_killed", pid=member.pid, grace_s=grace_s)
            member.kill()
            member.wait()
