import contextlib
import io
from collections.abc import Iterator

import orjson
import pytest
import structlog

from prodcat.consumer.logs import configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


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
