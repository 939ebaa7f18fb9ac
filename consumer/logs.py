"""Structured logs: JSON lines when not on a terminal, readable key=value when on one."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "INFO", *, json: bool | None = None) -> None:
    use_json = not sys.stderr.isatty() if json is None else json
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_stderr_now,
        cache_logger_on_first_use=False,
    )


def _stderr_now(*_args: object) -> structlog.PrintLogger:
    # sys.stderr looked up at each call, not at configuration: a stream swapped since (a
    # test's capture, a redirect) gets the logs instead of a closed file raising.
    return structlog.PrintLogger(sys.stderr)
