"""The learning loop's commands: `dataset from-topic` and `registry promote --candidate`.

Registered by `cli_training` under its `dataset` and `registry` commands.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prodcat.argtypes import positive_float, positive_int
from prodcat.cli_output import print_json
from prodcat.consumer.config import ConsumerSettings
from prodcat.flags import add_settings_flags, settings_overrides
from prodcat.schemas.labels import DEFAULT_CATEGORIES

if TYPE_CHECKING:
    from prodcat.trainer.promotion import Decision, Evidence

FROM_TOPIC_SETTINGS = ("bootstrap_servers", "kafka")


def cmd_dataset_from_topic(args: argparse.Namespace) -> int:
    from prodcat.consumer.client_config import kafka_client_config
    from prodcat.consumer.source import read_to_end
    from prodcat.trainer.labels_dataset import LABELS_SECTION, build_from_labels, load_base

    settings = ConsumerSettings(**settings_overrides(args, ConsumerSettings))
    base = load_base(args.base) if args.base is not None else None
    records = read_to_end(kafka_client_config(settings), args.labels_topic, idle_s=args.idle_s)
    # Per partition in offset order: a topic keyed by id holds each id's labels in one partition.
    records.sort(key=lambda r: (r.partition, r.offset))
    description = build_from_labels(
        (r.value for r in records),
        args.out,
        base=base,
        labels=args.categories.split(","),
        validation_fraction=args.validation_fraction,
        test_fraction=args.test_fraction,
    )
    topic = description[LABELS_SECTION]
    counts = ", ".join(f"{name} {split['total']}" for name, split in description["splits"].items())
    refused = ", ".join(f"{label} {n}" for label, n in topic["refused"].items()) or "none"
    print(
        f"wrote {args.out}: {counts}; {topic['records']} label records, {topic['ids']} ids, "
        f"{topic['added']} titles added, {topic['relabelled']} base titles relabelled, "
        f"{topic['dropped']} dropped, "
        f"{topic['unreadable']} unreadable, refused {sum(topic['refused'].values())} ({refused})"
    )
    return 0


def register_from_topic(dataset: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = dataset.add_parser(
        "from-topic",
        help="the labels topic (merged with a base dataset) to train/validation/test splits",
        description="Reads the labels topic from the beginning to its end; the latest label of "
        "each id wins, labels outside the label set are refused and counted. With --base, its "
        "splits are kept, an id it holds keeps its split and its titles take the new label; new "
        "ids are split by a hash of the id. Writes the `dataset build` format.",
    )
    parser.add_argument("--labels-topic", required=True, help="topic of label events (schema: labels_event)")
    parser.add_argument(
        "--base", type=Path, default=None, help="a dataset directory to merge the labels into"
    )
    parser.add_argument("--out", type=Path, required=True, help="dataset directory to write")
    parser.add_argument(
        "--categories", default=",".join(DEFAULT_CATEGORIES), help="comma-separated labels (without --base)"
    )
    parser.add_argument("--validation-fraction", type=positive_float, default=0.1, help="without --base")
    parser.add_argument("--test-fraction", type=positive_float, default=0.1, help="without --base")
    parser.add_argument(
        "--idle-s",
        type=positive_float,
        default=5.0,
        help="where the broker's end offsets prove wrong: stop after this long with no record",
    )
    add_settings_flags(parser, ConsumerSettings, only=FROM_TOPIC_SETTINGS)
    parser.set_defaults(handler=cmd_dataset_from_topic)
    return parser


def add_candidate_gate(promote: argparse.ArgumentParser) -> None:
    """`registry promote --candidate VERSION` and its thresholds, beside the plain `promote VERSION`."""
    promote.add_argument(
        "--candidate",
        default=None,
        metavar="VERSION",
        help="promote this version only if the consumers' shadow summaries of it pass the thresholds",
    )
    promote.add_argument(
        "--min-agreement",
        type=float,
        default=0.0,
        help="with --candidate: least share of compared events both models give the same label",
    )
    promote.add_argument(
        "--min-live-accuracy-gain",
        type=float,
        default=0.0,
        help="with --candidate: least candidate-minus-serving accuracy on events whose label arrived "
        "(negative tolerates a loss)",
    )
    promote.add_argument(
        "--min-judged",
        type=positive_int,
        default=100,
        help="with --candidate: least events judged against a label that arrived",
    )
    promote.add_argument(
        "--dry-run", action="store_true", help="with --candidate: say what the gate decides; move nothing"
    )
    promote.add_argument(
        "--json", action="store_true", help="with --candidate: print the decision and evidence as JSON"
    )


def cmd_promote_candidate(args: argparse.Namespace) -> int:
    from prodcat.errors import CheckpointError
    from prodcat.model.checkpoint import check_name
    from prodcat.model.registry import open_registry
    from prodcat.trainer.promotion import Thresholds, decide, read_summaries
    from prodcat.trainer.publish import promote

    thresholds = Thresholds(
        min_agreement=args.min_agreement,
        min_live_accuracy_gain=args.min_live_accuracy_gain,
        min_judged=args.min_judged,
    )
    registry = open_registry(args.registry)
    model = check_name("model name", args.model_name)
    candidate = check_name("version", args.candidate)
    serving = registry.current(model).version
    decision = decide(
        read_summaries(registry, model, candidate),
        candidate=candidate,
        serving=serving,
        thresholds=thresholds,
    )
    if args.json:
        print_json(_decision_json(decision, promoted=decision.promote and not args.dry_run))
    if args.dry_run:
        if not args.json:
            verdict = "would promote" if decision.promote else "would refuse: " + "; ".join(decision.refusals)
            print(f"{candidate}: {verdict} ({_evidence_line(decision.evidence)})")
        return 0
    if not decision.promote:
        raise CheckpointError(f"{candidate} not promoted: " + "; ".join(decision.refusals))
    promote(registry, model, candidate)
    if not args.json:
        print(f"{args.model_name} CURRENT -> {candidate} ({_evidence_line(decision.evidence)})")
    return 0


def _evidence_line(evidence: Evidence) -> str:
    agreement = "n/a" if evidence.agreement is None else f"{evidence.agreement:.4f}"
    serving = "n/a" if evidence.serving_accuracy is None else f"{evidence.serving_accuracy:.4f}"
    candidate = "n/a" if evidence.candidate_accuracy is None else f"{evidence.candidate_accuracy:.4f}"
    return (
        f"agreement {agreement} on {evidence.compared} events; live accuracy {serving} -> {candidate} "
        f"on {evidence.judged}, from {evidence.members} members"
    )


def _decision_json(decision: Decision, *, promoted: bool) -> dict[str, Any]:
    evidence = decision.evidence
    return {
        "candidate": decision.candidate,
        "serving": decision.serving,
        "passes": decision.promote,
        "promoted": promoted,
        "refusals": decision.refusals,
        "ignored_summaries": decision.ignored,
        "members": evidence.members,
        "compared": evidence.compared,
        "agreement": evidence.agreement,
        "judged": evidence.judged,
        "serving_accuracy": evidence.serving_accuracy,
        "candidate_accuracy": evidence.candidate_accuracy,
        "flips": [{"serving": s, "candidate": c, "count": n} for (s, c), n in evidence.flips.most_common()],
    }
