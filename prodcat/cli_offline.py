"""The subcommands that need no broker: `export` and `classify`."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from prodcat.argtypes import existing_file
from prodcat.consumer.config import ConsumerSettings
from prodcat.flags import add_settings_flags, settings_overrides

# The service settings classify reads: where the model is, and how batches are cut.
CLASSIFY_SETTINGS = (
    "registry",
    "model_name",
    "device",
    "top_k",
    "max_batch_size",
    "max_batch_tokens",
    "window_size",
    "min_golden_agreement",
    "max_failed_in_a_row",
)


def registry_location(value: str | Path) -> Path:
    """Where a command reads checkpoints from: a local registry, model folder or checkpoint.

    The one place `export` and `classify` turn their registry argument into a location.
    """
    return Path(value)


def cmd_export(args: argparse.Namespace) -> int:
    from prodcat.export import export_hf

    out = export_hf(registry_location(args.location), args.out, model_name=args.model_name, dtype=args.dtype)
    print(f"exported to {out} (transformers.pipeline('text-classification', model='{out}'))")
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from prodcat.classify import classify_stream
    from prodcat.model.loading import load_model

    settings = ConsumerSettings(**settings_overrides(args, ConsumerSettings))
    model = load_model(
        registry_location(settings.registry),
        model_name=settings.model_name,
        device=settings.device,
        min_agreement=settings.min_golden_agreement,
    )
    with ExitStack() as stack:
        lines = sys.stdin.buffer if args.file is None else stack.enter_context(args.file.open("rb"))
        classify_stream(
            lines,
            model,
            settings.batch_limits,
            top_k=settings.top_k,
            out=sys.stdout.buffer,
            errors=sys.stderr.buffer,
            input_format=args.input,
            max_failed_in_a_row=settings.max_failed_in_a_row,
        )
    return 0


def register(commands: Any) -> None:
    export = commands.add_parser(
        "export",
        help="write a checkpoint as a standard Hugging Face text-classification model",
        description="Writes a directory that transformers.pipeline('text-classification', model=DIR) "
        "loads without prodcat (pass truncation=True to truncate as prodcat does). Last-token "
        "checkpoints with a bias-free head and no instruction prefix export exactly; others are "
        "refused with the reason.",
    )
    export.add_argument(
        "location", metavar="CHECKPOINT_OR_REGISTRY", help="a checkpoint, model folder or registry"
    )
    export.add_argument("--format", choices=["hf"], required=True, help="hf: transformers' own format")
    export.add_argument("--out", type=Path, required=True, help="directory to write (absent or empty)")
    export.add_argument("--model-name", default=None, help="needed when the registry holds several models")
    export.add_argument(
        "--dtype",
        choices=["float32", "float16", "bfloat16"],
        default="float32",
        help="weights' dtype (float32: the same scores as prodcat on a CPU)",
    )
    export.set_defaults(handler=cmd_export)

    classify = commands.add_parser(
        "classify",
        help="classify titles or JSON events from a file or stdin, enriched JSON lines on stdout",
        description="Loads the model through the service's gate and batches as the service does. "
        "A line starting with { is an event, any other a title (its id: the line number). Lines "
        "that cannot be classified go to stderr as JSON objects (line, error_kind, error_message); "
        "they do not change the exit code (a model failing on every title does).",
    )
    classify.add_argument(
        "file", nargs="?", type=existing_file, default=None, help="input lines (default: stdin)"
    )
    classify.add_argument(
        "--input",
        choices=["auto", "titles", "events"],
        default="auto",
        help="how lines are read (auto: a line starting with { is an event)",
    )
    add_settings_flags(classify, ConsumerSettings, only=CLASSIFY_SETTINGS)
    classify.set_defaults(handler=cmd_classify)
