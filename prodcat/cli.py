"""`prodcat`: one command, one subcommand per job."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType

from pydantic import ValidationError

from prodcat import cli_service, cli_training
from prodcat.argtypes import OneLineParser
from prodcat.consumer.logs import configure_logging
from prodcat.consumer.parse import describe_validation_error
from prodcat.errors import ProdcatError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="prodcat",
        description=(
            "Streaming product categorizer: consume raw product events from Kafka, classify each "
            "title with a fine-tuned Qwen3-Embedding model, produce enriched events (or dead letters)."
        ),
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--log-json", action="store_true", default=None, help="JSON logs even on a terminal.")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser
    )

    cli_service.register(commands)
    cli_training.register(commands)
    return parser


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so context managers stop brokers and remove temp files;
    # long-running commands replace this with a graceful drain.
    signal.signal(signal.SIGTERM, _interrupt)
    configure_logging(args.log_level, json=args.log_json)
    if args.log_level != "DEBUG":
        # Our own bars show the long work; the library's per-file bars are noise around them.
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    handler: Handler = args.handler
    try:
        return handler(args)
    except ProdcatError as exc:
        print(f"prodcat: error: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        print(f"prodcat: error: invalid settings: {describe_validation_error(exc)}", file=sys.stderr)
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


if __name__ == "__main__":
    sys.exit(main())
