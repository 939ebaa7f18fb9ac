"""`prodcat`: one command, one subcommand per job."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from types import FrameType

from pydantic import ValidationError

from prodcat import cli_service, cli_training
from prodcat.argtypes import OneLineParser
from prodcat.consumer.logs import LogSettings, configure_logging
from prodcat.errors import ProdcatError
from prodcat.flags import load_settings

Handler = Callable[[argparse.Namespace], int]
Prepare = Callable[[argparse.Namespace], None]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="prodcat",
        description=(
            "Streaming product categorizer: consume raw product events from Kafka, classify each "
            "title with a fine-tuned Qwen3-Embedding model, produce enriched events (or dead letters)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"prodcat {_version()}")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser
    )

    cli_service.register(commands)
    cli_training.register(commands)
    for command in (parser, *_subcommand_parsers(parser)):
        _add_logging_flags(command)
    return parser


def _version() -> str:
    try:
        return version("prodcat")
    except PackageNotFoundError:
        return "(not installed)"


def _add_logging_flags(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand's parser must not overwrite a value given before the subcommand.
    group = parser.add_argument_group("logging (before or after the subcommand)")
    group.add_argument(
        "--log-level",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        default=argparse.SUPPRESS,
        help="Env: PRODCAT_LOG_LEVEL. Default: INFO.",
    )
    group.add_argument(
        "--log-json",
        action=argparse.BooleanOptionalAction,
        default=argparse.SUPPRESS,
        help="JSON lines (or key=value with --no-log-json). Env: PRODCAT_LOG_JSON. "
        "Default: JSON unless stderr is a terminal.",
    )


def _subcommand_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    # argparse offers no public way to reach the parsers of its subcommands.
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield sub
                yield from _subcommand_parsers(sub)


def _log_settings(args: argparse.Namespace) -> LogSettings:
    given = {name: getattr(args, name) for name in LogSettings.model_fields if hasattr(args, name)}
    return load_settings(LogSettings, given)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _quiet_libraries(level: str, *, terminal: bool) -> None:
    from transformers.utils import logging as transformers_logging

    # transformers logs through a stderr handler of its own; through ours its lines are structured.
    transformers_logging.disable_default_handler()
    transformers_logging.enable_propagation()
    if level != "DEBUG" or not terminal:
        # Our own progress shows the long work; the library's per-file bars are noise around it,
        # and off a terminal they are not lines at all.
        transformers_logging.disable_progress_bar()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # The command line as given, for commands that start copies of themselves (consume --processes).
    args.argv = list(sys.argv[1:] if argv is None else argv)
    # SIGTERM unwinds like Ctrl-C, so context managers stop brokers and remove temp files;
    # long-running commands replace this with a graceful drain.
    signal.signal(signal.SIGTERM, _interrupt)
    handler: Handler = args.handler
    prepare: Prepare | None = getattr(args, "prepare", None)
    try:
        logs = _log_settings(args)
        # Settings from the environment are judged before transformers (and torch) is imported,
        # so a bad one is told at once, not after seconds of imports.
        if prepare is not None:
            prepare(args)
        configure_logging(logs.log_level, json=logs.log_json)
        _quiet_libraries(logs.log_level, terminal=sys.stderr.isatty())
        return handler(args)
    except ProdcatError as exc:
        print(f"prodcat: error: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        print(f"prodcat: error: invalid settings: {describe_settings_error(exc)}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"prodcat: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # Files that cannot be read and hubs that cannot be reached; the first line says which.
        print(f"prodcat: error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def describe_settings_error(exc: ValidationError) -> str:
    """The first three problems, each naming its setting (a rule across settings names none)."""
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


if __name__ == "__main__":
    sys.exit(main())
