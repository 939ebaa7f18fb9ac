"""Structured logs: JSON lines when not on a terminal, readable key=value when on one.

Python `logging` records (transformers, urllib3, `warnings`) go through the same
processors, so off a terminal they too are one JSON object per line.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class LogSettings(BaseSettings):
    """`--log-level`/`--log-json`, else `PRODCAT_LOG_LEVEL`/`PRODCAT_LOG_JSON`, else the defaults."""

    model_config = SettingsConfigDict(env_prefix="PRODCAT_", frozen=True, extra="forbid")

    log_level: LogLevel = Field(default="INFO", description="Quietest level logged.")
    log_json: bool | None = Field(
        default=None,
        description="JSON lines (true) or key=value (false); unset: JSON unless stderr is a terminal.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


def configure_logging(level: str = "INFO", *, json: bool | None = None) -> None:
    use_json = not sys.stderr.isatty() if json is None else json
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # On one line: a traceback becomes a field of the JSON object, not lines of its own.
    rendering: list[structlog.typing.Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if use_json
        else [structlog.dev.ConsoleRenderer(colors=False)]
    )
    numeric_level = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[*shared, *rendering],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=_stderr_now,
        cache_logger_on_first_use=False,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        )
    )
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    logging.captureWarnings(True)


def _stderr_now(*_args: object) -> structlog.PrintLogger:
    # sys.stderr looked up at each call, not at configuration: a stream swapped since (a
    # test's capture, a redirect) gets the logs instead of a closed file raising.
    return structlog.PrintLogger(sys.stderr)


class _StderrHandler(logging.Handler):
    """Writes to the sys.stderr of the moment, for the same reason as `_stderr_now`."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)
