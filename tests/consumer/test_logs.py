import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

import orjson
import pytest
import structlog

from prodcat.consumer.logs import LogSettings, configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def test_logs_go_to_the_stderr_of_the_moment_not_the_one_at_configuration() -> None:
    with contextlib.redirect_stderr(io.StringIO()):
        configure_logging(json=True)
    later = io.StringIO()
    with contextlib.redirect_stderr(later):
        structlog.get_logger("test").info("hello", answer=42)
    line = orjson.loads(later.getvalue())
    assert (line["event"], line["answer"], line["level"]) == ("hello", 42, "info")


def test_a_level_filters_out_quieter_records() -> None:
    out = io.StringIO()
    with contextlib.redirect_stderr(out):
        configure_logging("WARNING", json=True)
        structlog.get_logger("test").info("dropped")
        structlog.get_logger("test").warning("kept")
    assert [orjson.loads(line)["event"] for line in out.getvalue().splitlines()] == ["kept"]


def test_a_standard_library_log_record_is_one_json_line_naming_its_logger() -> None:
    out = io.StringIO()
    with contextlib.redirect_stderr(out):
        configure_logging(json=True)
        logging.getLogger("urllib3.connectionpool").warning("retrying %s", "GET /")
    line = orjson.loads(out.getvalue())
    assert (line["event"], line["logger"], line["level"]) == (
        "retrying GET /",
        "urllib3.connectionpool",
        "warning",
    )


def test_a_python_warning_is_one_json_line() -> None:
    out = io.StringIO()
    with contextlib.redirect_stderr(out):
        configure_logging(json=True)
        warnings.warn("deprecated knob", UserWarning, stacklevel=1)
    assert "deprecated knob" in orjson.loads(out.getvalue())["event"]


def test_an_exception_logged_with_its_traceback_stays_one_json_line() -> None:
    out = io.StringIO()
    with contextlib.redirect_stderr(out):
        configure_logging(json=True)
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("lib").exception("failed")
    (line,) = out.getvalue().splitlines()
    assert "RuntimeError: boom" in orjson.loads(line)["exception"]


def test_configuring_twice_writes_each_record_once() -> None:
    out = io.StringIO()
    with contextlib.redirect_stderr(out):
        configure_logging(json=True)
        configure_logging(json=True)
        logging.getLogger("lib").warning("once")
    assert len(out.getvalue().splitlines()) == 1


def test_the_log_settings_read_prodcat_log_level_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODCAT_LOG_LEVEL", "warning")
    assert LogSettings().log_level == "WARNING"


def test_the_log_settings_read_prodcat_log_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODCAT_LOG_JSON", "false")
    assert LogSettings().log_json is False
