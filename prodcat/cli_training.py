"""The training subcommands: `base`, `dataset`, `train`, `evaluate`, `registry`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from prodcat import cli_loop
from prodcat.argtypes import (
    OneLineParser,
    base_model_arg,
    existing_file,
    existing_path,
    fraction,
    positive_float,
    positive_int,
    registry_arg,
)
from prodcat.cli_output import print_json
from prodcat.flags import COMMAND_ENV_PREFIXES, add_env_defaults
from prodcat.schemas.labels import DEFAULT_CATEGORIES


def cmd_base_tiny(args: argparse.Namespace) -> int:
    from prodcat.trainer.tiny_base import build_tiny_base

    out = build_tiny_base(args.corpus, args.out, seed=args.seed)
    print(out)
    return 0


def cmd_dataset_sample(args: argparse.Namespace) -> int:
    from prodcat.trainer.sample_corpus import generate, write_jsonl

    records = generate(per_class=args.per_class, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(records, args.out)
    print(f"wrote {len(records)} titles to {args.out}")
    return 0


def cmd_dataset_build(args: argparse.Namespace) -> int:
    from prodcat.trainer.dataset_build import BuildOptions, build_dataset, write_dataset
    from prodcat.trainer.lspc import ReadStats, TextOptions, read_catalogue, read_lspc, read_mapping

    options = BuildOptions(
        categories=None if args.top_k else tuple(args.categories.split(",")),
        top_k=args.top_k,
        validation_fraction=args.validation_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
    )
    text = TextOptions(mode=args.text, max_chars=args.max_chars)
    stats = ReadStats()
    if args.lspc is not None:
        mapping = read_mapping(args.mapping) if args.mapping else None
        offers = read_lspc(args.lspc, mapping=mapping, text=text, stats=stats)
    else:
        offers = read_catalogue(args.jsonl, text=text, stats=stats)
    report = write_dataset(build_dataset(offers, options, stats), args.out)
    counts = ", ".join(f"{name} {split['total']}" for name, split in report["splits"].items())
    skipped = sum(report["read"]["skipped_lines"].values())
    print(f"wrote {args.out}: {counts}; {skipped} lines skipped, {report['duplicates_removed']} duplicates")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from prodcat.model.registry import is_uri
    from prodcat.trainer.checkpointing import TrainingPaused
    from prodcat.trainer.train import TrainConfig, train

    config = TrainConfig(
        data=args.data,
        base_model=args.base_model,
        registry=args.registry,
        model_name=args.model_name,
        full_finetune=args.full_finetune,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        learning_rate=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_length=args.max_length,
        seed=args.seed,
        instruction=args.instruction,
        labels=tuple(args.categories.split(",")),
        lora_dropout=args.lora_dropout,
        warmup_fraction=args.warmup_fraction,
        validation_fraction=args.validation_fraction,
        grad_accum_steps=args.grad_accum_steps,
        class_weighting=args.class_weighting,
        balanced_sampling=args.balanced_sampling,
        eval_every=args.eval_every,
        resume=args.resume,
        state_dir=args.state_dir,
        save_every=args.save_every,
        stop_after_steps=args.stop_after_steps,
        resume_from=args.resume_from,
        as_candidate=args.candidate,
    )
    try:
        result = train(config)
    except TrainingPaused as paused:
        print(paused)
        return 0
    where = (
        result.checkpoint
        if not is_uri(args.registry)
        else f"{args.registry}/{args.model_name}/{result.version}"
    )
    headline = f"macro-F1 {result.metrics['macro_f1']:.4f}, accuracy {result.metrics['accuracy']:.4f}"
    skipped = f"; {result.skipped} records outside the labels skipped" if result.skipped else ""
    best = f"best step {result.metrics['best_step']:.0f}"
    role = " as CANDIDATE (CURRENT unchanged)" if args.candidate else ""
    print(f"published {where}{role} (validation {headline}, {best}{skipped})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from prodcat.trainer.report import REPORT_MD, evaluate_checkpoint

    report = evaluate_checkpoint(
        args.checkpoint,
        args.data,
        out_dir=args.out,
        model_name=args.model_name,
        device=args.device,
        batch_size=args.batch_size,
    )
    if args.json:
        print_json(
            {
                "model_name": report.model_name,
                "version": report.version,
                "examples": report.examples,
                "accuracy": report.accuracy,
                "macro_f1": report.macro_f1,
                "expected_calibration_error": report.expected_calibration_error,
                "report": str(args.out / REPORT_MD),
            }
        )
        return 0
    print(
        f"{report.model_name} {report.version} on {report.examples} examples: "
        f"accuracy {report.accuracy:.4f}, macro-F1 {report.macro_f1:.4f}, "
        f"ECE {report.expected_calibration_error:.4f}; "
        f"report in {args.out / REPORT_MD}"
    )
    return 0


def cmd_registry_list(args: argparse.Namespace) -> int:
    from prodcat.model.registry import open_registry

    registry = open_registry(args.registry)
    current = registry.current(args.model_name).version
    pointer = registry.candidate(args.model_name)
    candidate = pointer.version if pointer is not None else None
    manifests = {
        version: registry.manifest(args.model_name, version) for version in registry.versions(args.model_name)
    }
    if args.json:
        print_json(
            {
                "model_name": args.model_name,
                "current": current,
                "candidate": candidate,
                "versions": [
                    {"version": version, "base_model": manifest.base_model, "metrics": manifest.metrics}
                    for version, manifest in manifests.items()
                ],
            }
        )
        return 0
    for version, manifest in manifests.items():
        metrics = " ".join(f"{k}={v:.3f}" for k, v in sorted(manifest.metrics.items()))
        mark = "*" if version == current else "c" if version == candidate else " "
        print(f"{mark} {version}  {manifest.base_model}  {metrics}")
    return 0


def cmd_registry_promote(args: argparse.Namespace) -> int:
    from prodcat.trainer.publish import promote

    if args.candidate is not None:
        if args.version is not None:
            raise ValueError("name the version to promote either as VERSION or as --candidate, not both")
        return cli_loop.cmd_promote_candidate(args)
    if args.version is None:
        raise ValueError("name the version to promote: VERSION, or --candidate VERSION to gate it")
    if args.dry_run or args.json:
        raise ValueError("--dry-run and --json go with --candidate")

    promote(args.registry, args.model_name, args.version)
    print(f"{args.model_name} CURRENT -> {args.version}")
    return 0


def cmd_registry_rollback(args: argparse.Namespace) -> int:
    from prodcat.trainer.publish import rollback

    version = rollback(args.registry, args.model_name)
    print(f"{args.model_name} CURRENT -> {version}")
    return 0


def register(commands: Any) -> None:
    base = commands.add_parser("base", help="build base models").add_subparsers(
        dest="base_command", required=True, metavar="KIND", parser_class=OneLineParser
    )
    tiny = base.add_parser("tiny", help="a tiny random-init Qwen3 model + BPE tokenizer trained on a corpus")
    tiny.add_argument("--corpus", type=existing_file, required=True, help="JSON lines with a 'title' field")
    tiny.add_argument("--out", type=Path, required=True, help="model directory to write")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(handler=cmd_base_tiny)

    dataset = commands.add_parser("dataset", help="build training data").add_subparsers(
        dest="dataset_command", required=True, metavar="KIND", parser_class=OneLineParser
    )
    sample = dataset.add_parser("sample", help="write the generated sample corpus of shop titles")
    sample.add_argument("--out", type=Path, required=True)
    sample.add_argument("--per-class", type=positive_int, default=400)
    sample.add_argument("--seed", type=int, default=0)
    sample.set_defaults(handler=cmd_dataset_sample)

    build = dataset.add_parser(
        "build",
        help="LSPC V2020 archive (or your JSON lines) to cluster-grouped train/validation/test splits",
        description="Streams the archive, normalises titles, removes duplicates within a cluster, "
        "splits by cluster (no product in two splits), and writes Parquet splits + dataset.json.",
    )
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--lspc", type=existing_file, help="lspcV2020.zip (members *.json.gz / *.json)")
    source.add_argument("--jsonl", type=existing_file, help="your own JSON lines with title, category")
    build.add_argument("--mapping", type=existing_file, help="cluster_id<TAB>category file (PDC2020 map)")
    build.add_argument("--out", type=Path, required=True, help="dataset directory to write")
    build.add_argument("--text", choices=["title", "title+description"], default="title")
    build.add_argument("--max-chars", type=positive_int, default=None, help="truncate each text")
    build.add_argument("--categories", default=",".join(DEFAULT_CATEGORIES), help="comma-separated label set")
    build.add_argument("--top-k", type=positive_int, default=None, help="the N most frequent labels instead")
    build.add_argument("--validation-fraction", type=positive_float, default=0.1)
    build.add_argument("--test-fraction", type=positive_float, default=0.1)
    build.add_argument("--seed", type=int, default=0)
    build.set_defaults(handler=cmd_dataset_build)
    cli_loop.register_from_topic(dataset)

    train = commands.add_parser(
        "train",
        help="fine-tune a classifier and publish it to a registry",
        description="LoRA (r=16, alpha=32, AdamW, lr 5e-5, 1 epoch) on a Qwen3 base by default.",
    )
    train.add_argument(
        "--data",
        type=existing_path,
        required=True,
        help="JSON lines with title, category, or a directory from `prodcat dataset build`",
    )
    train.add_argument(
        "--base-model", type=base_model_arg, required=True, help="hub id or local model directory"
    )
    train.add_argument(
        "--registry", type=registry_arg, required=True, help="a folder, s3://, gs:// or az://bucket/prefix"
    )
    train.add_argument("--model-name", default="product-categorizer")
    train.add_argument("--full-finetune", action="store_true", help="train every weight (random-init bases)")
    train.add_argument("--lora-r", type=positive_int, default=16)
    train.add_argument("--lora-alpha", type=positive_int, default=32)
    train.add_argument("--lr", type=positive_float, default=5e-5)
    train.add_argument("--epochs", type=positive_float, default=1.0)
    train.add_argument("--batch-size", type=positive_int, default=32)
    train.add_argument("--max-length", type=positive_int, default=64)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--instruction", default=None, help="prefix put before every title (by the tokenizer's template)"
    )
    train.add_argument("--categories", default=",".join(DEFAULT_CATEGORIES), help="comma-separated labels")
    train.add_argument("--lora-dropout", type=fraction, default=0.05)
    train.add_argument("--warmup-fraction", type=fraction, default=0.06, help="share of steps warming up")
    train.add_argument(
        "--validation-fraction", type=positive_float, default=0.15, help="held out from a JSONL file"
    )
    train.add_argument(
        "--grad-accum-steps", type=positive_int, default=1, help="micro-batches per optimizer step"
    )
    train.add_argument(
        "--class-weighting",
        choices=["none", "balanced"],
        default="none",
        help="balanced: weigh the loss by inverse class frequency (lifts rare classes such as Baby)",
    )
    train.add_argument(
        "--balanced-sampling", action="store_true", help="draw every class equally often (with replacement)"
    )
    train.add_argument(
        "--eval-every", type=positive_int, default=None, help="validate every N steps (default: each epoch)"
    )
    train.add_argument(
        "--resume", action="store_true", help="continue an interrupted run from its saved state"
    )
    train.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where resumable state is kept (default: <registry>/<model-name>/.train-state); "
        "point it at fast local disk when the registry is remote storage",
    )
    train.add_argument(
        "--save-every", type=positive_int, default=200, help="save resumable state every N steps"
    )
    train.add_argument(
        "--stop-after-steps",
        type=positive_int,
        default=None,
        help="stop after N steps in this invocation (state saved; continue with --resume)",
    )
    train.add_argument(
        "--resume-from",
        default=None,
        metavar="VERSION",
        help="start from a published version's head and adapter (backbone with --full-finetune) "
        "instead of fresh ones; CURRENT for the live one",
    )
    train.add_argument(
        "--candidate",
        action="store_true",
        help="publish as the registry's CANDIDATE, for consumers to judge in their shadow; "
        "CURRENT stays (promote it with `registry promote --candidate`)",
    )
    train.set_defaults(handler=cmd_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="score a published checkpoint: accuracy, macro-F1, per class, confusion matrix, calibration",
        description="Loads the checkpoint as the consumer does (checksums verified) and writes "
        "report.json, report.md and confusion_matrix.png.",
    )
    evaluate.add_argument(
        "--checkpoint",
        "--registry",
        dest="checkpoint",
        type=registry_arg,
        required=True,
        help="a checkpoint, a model's registry folder, or a registry (a folder or a URI)",
    )
    evaluate.add_argument(
        "--data",
        type=existing_path,
        required=True,
        help="JSON lines with title, category, or a dataset directory (its test split is used)",
    )
    evaluate.add_argument("--out", type=Path, default=Path("evaluation"), help="report directory")
    evaluate.add_argument("--model-name", default=None, help="needed when the registry holds several models")
    evaluate.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    evaluate.add_argument("--batch-size", type=positive_int, default=64)
    evaluate.add_argument("--json", action="store_true", help="print the headline scores as one JSON object")
    evaluate.set_defaults(handler=cmd_evaluate)

    registry = commands.add_parser("registry", help="inspect and move the CURRENT pointer").add_subparsers(
        dest="registry_command", required=True, metavar="ACTION", parser_class=OneLineParser
    )
    listing = registry.add_parser("list", help="versions, CURRENT marked with *, CANDIDATE with c")
    listing.add_argument("--json", action="store_true", help="print the versions as one JSON object")
    promote = registry.add_parser("promote", help="point CURRENT at a version")
    promote.add_argument("version", nargs="?", default=None, help="the version to make CURRENT, ungated")
    cli_loop.add_candidate_gate(promote)
    back = registry.add_parser("rollback", help="point CURRENT back at the version live before it")
    for sub, handler in (
        (listing, cmd_registry_list),
        (promote, cmd_registry_promote),
        (back, cmd_registry_rollback),
    ):
        sub.add_argument(
            "--registry",
            type=registry_arg,
            default="registry",
            help="a folder or s3:// gs:// az:// hf:// URI",
        )
        sub.add_argument("--model-name", default="product-categorizer")
        sub.set_defaults(handler=handler)
    for group, commands_of_group in (
        ("base", (tiny,)),
        ("dataset", (sample, build)),
        ("train", (train,)),
        ("evaluate", (evaluate,)),
        ("registry", (listing, promote, back)),
    ):
        for command in commands_of_group:
            add_env_defaults(command, COMMAND_ENV_PREFIXES[group])
