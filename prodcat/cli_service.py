"""The streaming subcommands: `demo`, `consume`, `produce`."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Collection
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prodcat.argtypes import OneLineParser, existing_file, positive_float, positive_int
from prodcat.cli_env import kafka_bootstrap_from_env
from prodcat.cli_output import print_json
from prodcat.consumer.client_config import (
    group_consumer_config,
    kafka_client_config,
    require_broker,
    validate_client_config,
)
from prodcat.consumer.config import ConsumerSettings
from prodcat.errors import ConfigError
from prodcat.flags import add_settings_flags, load_settings, settings_overrides
from prodcat.schemas.events import ErrorKind
from prodcat.signals import install_stop_signals

if TYPE_CHECKING:
    from prodcat.consumer.service import RunSummary


# The settings each command reads, from its flags and the environment; consume reads them all.
PRODUCE_SETTINGS = ("bootstrap_servers", "input_topic", "kafka", "timeout")
REPLAY_SETTINGS = (
    "bootstrap_servers",
    "dead_letter_topic",
    "group_id",
    "kafka",
    "kafka_consumer",
    "session_timeout_ms",
    "heartbeat_interval_ms",
    "shutdown_timeout_s",
    "timeout",
)
DEMO_TIMEOUT_S = 30.0


def prepare_settings(args: argparse.Namespace, *, only: Collection[str] | None = None) -> None:
    """`args.settings`: the command's settings, checked before any model library is imported."""
    args.settings = _settings(args, only)


def _settings(args: argparse.Namespace, only: Collection[str] | None) -> ConsumerSettings:
    """The settings, with librdkafka's verdict on the Kafka properties before any work starts."""
    settings = load_settings(ConsumerSettings, settings_overrides(args, ConsumerSettings), only=only)
    group = group_consumer_config(
        settings, group_id=settings.group_id, auto_offset_reset=settings.auto_offset_reset
    )
    try:
        validate_client_config(kafka_client_config(settings))
        validate_client_config(group)
    except ConfigError as exc:
        # A bad --kafka property is a bad setting like any other: exit code 2, not 1.
        raise ValueError(str(exc)) from None
    return settings


def _add_json_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as one JSON object on stdout")


def cmd_consume(args: argparse.Namespace) -> int:
    from prodcat.consumer.classify.provider import ModelProvider
    from prodcat.consumer.health import Readiness, serve_health
    from prodcat.consumer.metrics import Metrics
    from prodcat.consumer.service import CategorizerService

    settings: ConsumerSettings = args.settings
    if settings.processes > 1:
        from prodcat.consumer.supervisor import supervise

        if args.until_records is not None:
            raise ValueError("--until-records counts one member's records; it needs --processes 1")
        _require_broker(settings)
        return supervise(args.argv, settings.processes)
    metrics, readiness = Metrics(), Readiness()
    # Each member of a supervised group serves its probes on its own port.
    port = None if settings.metrics_port is None else settings.metrics_port + args.member_index
    # Probes answer from process start: alive while the model loads, ready only once consuming.
    with ExitStack() as stack:
        if port is not None:
            stack.enter_context(serve_health(metrics, readiness, port, stall_after_s=settings.health_stall_s))
        # Before the model loads: a wrong address is told in seconds, not after loading the weights.
        readiness.waiting_for = f"a Kafka broker at {settings.bootstrap_servers}"
        _require_broker(settings)
        readiness.waiting_for = None
        provider = ModelProvider.open(
            settings.registry,
            model_name=settings.model_name,
            device=settings.device,
            interval_s=settings.reload_interval_s,
            min_agreement=settings.min_golden_agreement,
            max_tokens=settings.max_batch_tokens,
            on_result=metrics.reload,
            on_transition=metrics.reload_state,
            on_degraded=lambda note: setattr(readiness, "model_note", note),
            cache_dir=settings.cache_dir,
        )
        service = CategorizerService(
            settings, provider, metrics=metrics, readiness=readiness, member_index=args.member_index
        )
        install_stop_signals(service.stop)
        summary = service.run(until_records=args.until_records)
    print_run_summary(summary, as_json=args.json)
    return 0


def _require_broker(settings: ConsumerSettings) -> None:
    if settings.timeout > 0:
        require_broker(kafka_client_config(settings), settings.timeout)


def print_run_summary(summary: RunSummary, *, as_json: bool) -> None:
    seconds = summary.seconds
    if as_json:
        print_json(
            {
                "consumed": summary.consumed,
                "enriched": summary.enriched,
                "dead_lettered": summary.dead_lettered,
                "seconds": seconds,
            }
        )
        return
    print(
        f"consumed {summary.consumed}, enriched {summary.enriched}, "
        f"dead-lettered {summary.dead_lettered} in {seconds:.1f}s"
    )


def cmd_produce(args: argparse.Namespace) -> int:
    from prodcat.produce import produce_file

    settings: ConsumerSettings = args.settings
    _require_broker(settings)
    count = produce_file(args.file, settings)
    print(f"produced {count} events to {settings.input_topic}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from prodcat.consumer.replay import replay_dead_letters

    settings: ConsumerSettings = args.settings
    _require_broker(settings)
    kinds = frozenset(args.kind or [ErrorKind.INFERENCE_FAILED])
    summary = replay_dead_letters(settings, kinds, idle_s=args.idle_s, dry_run=args.dry_run)
    if args.json:
        print_json(
            {
                "dry_run": args.dry_run,
                "replayed": dict(summary.replayed),
                "skipped": dict(summary.skipped),
                "unreadable": summary.unreadable,
            }
        )
        return 0
    verb = "would replay" if args.dry_run else "replayed"
    print(
        f"{verb} {summary.replayed.total()} ({_by_kind(summary.replayed)}); skipped "
        f"{summary.skipped.total()} ({_by_kind(summary.skipped)}); unreadable {summary.unreadable}"
    )
    return 0


def _by_kind(counts: Counter[str]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())) or "none"


def cmd_demo(args: argparse.Namespace) -> int:
    from prodcat.demo import DemoOptions, run_demo

    bootstrap = kafka_bootstrap_from_env()
    if bootstrap is not None:
        # Only a cluster named by the environment can be absent; the embedded broker is started here.
        require_broker({"bootstrap.servers": bootstrap}, args.timeout)
    options = DemoOptions(
        work_dir=args.work_dir,
        events=args.events,
        per_class=args.per_class,
        epochs=args.epochs,
        device=args.device,
    )
    return run_demo(options)


def register(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="run everything on one machine: broker, tiny model, training, streaming",
        description=(
            "Builds a tiny Qwen3-architecture model, trains it on a generated sample corpus, "
            "publishes it, produces sample events (some malformed) and categorizes them. Uses "
            "KAFKA_BOOTSTRAP_SERVERS when set, otherwise an embedded broker."
        ),
    )
    demo.add_argument(
        "--work-dir", type=Path, default=Path(".cache/demo"), help="cache for model and registry"
    )
    demo.add_argument("--events", type=positive_int, default=300, help="events to produce (default 300)")
    demo.add_argument("--per-class", type=positive_int, default=400, help="training titles per class")
    demo.add_argument("--epochs", type=positive_float, default=None, help="training epochs")
    demo.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    demo.add_argument(
        "--timeout",
        type=positive_float,
        default=DEMO_TIMEOUT_S,
        help="with KAFKA_BOOTSTRAP_SERVERS: longest wait for a broker there to answer "
        f"(default {DEMO_TIMEOUT_S:g})",
    )
    demo.set_defaults(handler=cmd_demo)

    consume = commands.add_parser(
        "consume",
        help="run the categorizer service (a consumer-group member)",
        description="Consumes raw product events, classifies them in micro-batches, produces enriched "
        "events and dead letters, commits offsets after delivery. SIGINT/SIGTERM drain and commit.",
    )
    consume.add_argument(
        "--until-records", type=positive_int, default=None, help="stop after this many records are done"
    )
    # Set by the --processes supervisor for the members it starts; not for users.
    consume.add_argument("--member-index", type=int, default=0, help=argparse.SUPPRESS)
    _add_json_flag(consume, "the run's counts, on exit,")
    add_settings_flags(consume, ConsumerSettings)
    consume.set_defaults(handler=cmd_consume, prepare=prepare_settings)

    produce = commands.add_parser(
        "produce", help="produce raw events from a JSON-lines file (key = each event's id)"
    )
    produce.add_argument("file", type=existing_file, help="one JSON event per line")
    add_settings_flags(produce, ConsumerSettings, only=PRODUCE_SETTINGS)
    produce.set_defaults(handler=cmd_produce, prepare=partial(prepare_settings, only=PRODUCE_SETTINGS))

    dead_letters = commands.add_parser("dead-letters", help="act on the dead-letter topic").add_subparsers(
        dest="dead_letters_command", required=True, metavar="ACTION", parser_class=OneLineParser
    )
    replay = dead_letters.add_parser(
        "replay",
        help="send dead-lettered events back to their source topic",
        description="Re-sends the original key, value and headers of each dead letter of the chosen "
        "kinds to the topic it came from, for the categorizer to try again. Progress is committed "
        "per kind selection: a second run continues where the first stopped. Ends once the "
        "dead-letter topic's end offsets of when it started, or, where the broker's watermarks "
        "prove wrong, once the topic has been quiet for --idle-s.",
    )
    replay.add_argument(
        "--kind",
        action="append",
        type=ErrorKind,
        choices=list(ErrorKind),
        metavar="KIND",
        help="error kind to replay, repeatable (default: inference_failed); one of "
        + ", ".join(k.value for k in ErrorKind),
    )
    replay.add_argument(
        "--idle-s", type=positive_float, default=5.0, help="stop after this long with no new dead letter"
    )
    replay.add_argument("--dry-run", action="store_true", help="count what would be replayed; send nothing")
    _add_json_flag(replay, "the counts by kind")
    add_settings_flags(replay, ConsumerSettings, only=REPLAY_SETTINGS)
    replay.set_defaults(handler=cmd_replay, prepare=partial(prepare_settings, only=REPLAY_SETTINGS))
