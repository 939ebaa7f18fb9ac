"""The learning loop end to end on a real broker with real (tiny) models: before and after.

    .venv/bin/python -m bench.loop --update BENCHMARKS.md

1. A tiny base is trained on the generated sample corpus WITHOUT one style of titles
   (watches, labelled Jewelry) and published as CURRENT.
2. Stream 1, which holds that style, is served with review routing on; accuracy is measured
   against ground truth.
3. A stand-in labeller reads the review topic and answers from ground truth on a labels topic.
4. `prodcat dataset from-topic` merges those labels into the base dataset and
   `prodcat train --resume-from CURRENT --candidate` builds a candidate.
5. Stream 2 is served with `--shadow-fraction 1.0` and `--labels-topic`: the shadow judges the
   candidate, its labels arriving on the labels topic after the events were compared.
6. `prodcat registry promote --candidate` applies the gate to the summary the shadow wrote.
7. Stream 3 is served by the promoted model.

Everything runs in this process through `CategorizerService` and `prodcat.cli.main`, on the
broker `KAFKA_BOOTSTRAP_SERVERS` names or else the embedded one. The three streams are
disjoint draws (other seeds) of the same mix: --held-out-share of the held-out style, the
rest the ordinary corpus.
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import torch

from bench.report import record_result
from prodcat.cli import main as prodcat_main
from prodcat.consumer.classify.provider import FixedModel, ModelProvider, ModelSource
from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.service import CategorizerService, summary_writer
from prodcat.consumer.source import read_topic
from prodcat.consumer.topics import ensure_topics
from prodcat.model.checkpoint import read_current
from prodcat.model.loading import load_model
from prodcat.produce import produce_values
from prodcat.schemas.shadow import ShadowSummary
from prodcat.scratch import scratch_settings
from prodcat.testing import kafka_broker
from prodcat.trainer.records import write_jsonl
from prodcat.trainer.sample_corpus import generate
from prodcat.trainer.tiny_base import build_tiny_base

SECTION = "loop"
MODEL = "product-categorizer"
# The held-out style: the sample corpus's watches (labelled Jewelry), the only titles with the
# word "Watch"; without them a model reads "Men's ... Leather Strap" as anything but Jewelry.
HELD_OUT = re.compile(r"\bWatch\b")
WAIT_S = 120.0
MIN_AGREEMENT = 0.0


@dataclass(frozen=True)
class Stream:
    name: str
    ids: list[str]
    titles: list[str]
    truth: list[str]

    @property
    def held_out(self) -> list[bool]:
        return [HELD_OUT.search(t) is not None for t in self.titles]


@dataclass(frozen=True)
class Served:
    """What one stream's run left on the topics."""

    labels: dict[str, str]
    reviewing: bool
    flagged: set[str]
    reviewed: list[dict[str, object]]
    dead_letters: int
    seconds: float


@dataclass(frozen=True)
class LoopResult:
    streams: dict[str, Stream]
    served: dict[str, Served]
    labels_written: int
    candidate: str
    promoted: bool
    summary: ShadowSummary
    steps_s: dict[str, float]
    command_lines: dict[str, str]


def accuracy(stream: Stream, served: Served, only: list[bool] | None = None) -> float:
    picked = [
        served.labels.get(i) == t
        for n, (i, t) in enumerate(zip(stream.ids, stream.truth, strict=True))
        if only is None or only[n]
    ]
    return sum(picked) / len(picked) if picked else float("nan")


def make_stream(name: str, size: int, held_out_share: float, seed: int) -> Stream:
    """`size` titles, about `held_out_share` of them of the held-out style."""
    want = round(size * held_out_share)
    # Watches are about one Jewelry title in four.
    pool = generate(per_class=max(60, size, 6 * want), seed=seed)
    held = [r for r in pool if HELD_OUT.search(r.title)]
    other = [r for r in pool if not HELD_OUT.search(r.title)]
    if len(held) < want:
        raise SystemExit(f"the corpus gave {len(held)} held-out titles, {want} wanted")
    records = held[:want] + other[: size - want]
    random.Random(seed).shuffle(records)
    return Stream(
        name,
        [f"{name}-{n}" for n in range(len(records))],
        [r.title for r in records],
        [r.category for r in records],
    )


def cli(*argv: str) -> None:
    code = prodcat_main(list(argv))
    if code != 0:
        raise SystemExit(f"`prodcat {' '.join(argv)}` exited {code}")


def serve(settings: ConsumerSettings, models: ModelSource, stream: Stream) -> Served:
    """Produces the stream, serves it until every event is accounted for, and reads the outputs."""
    documents = [orjson.dumps({"id": i, "title": t}) for i, t in zip(stream.ids, stream.titles, strict=True)]
    produce_values(documents, settings)
    started = time.perf_counter()
    CategorizerService(settings, models).run(until_records=len(documents))
    return collect(settings, stream, time.perf_counter() - started)


def collect(settings: ConsumerSettings, stream: Stream, seconds: float) -> Served:
    config = kafka_client_config(settings)
    outputs = [
        orjson.loads(r.value or b"")
        for r in read_topic(config, settings.output_topic, expected=len(stream.ids), timeout_s=WAIT_S)
    ]
    flagged = {str(o["id"]) for o in outputs if o["classification"].get("needs_review")}
    dead = read_topic(config, settings.dead_letter_topic, expected=0, timeout_s=WAIT_S, settle_s=1.0)
    reviewed: list[dict[str, object]] = []
    if settings.review_topic:
        reviewed = [
            orjson.loads(r.value or b"")
            for r in read_topic(config, settings.review_topic, expected=len(flagged), timeout_s=WAIT_S)
        ]
    return Served(
        labels={str(o["id"]): str(o["classification"]["label"]) for o in outputs},
        reviewing=settings.review_topic is not None,
        flagged=flagged,
        reviewed=reviewed,
        dead_letters=len(dead),
        seconds=seconds,
    )


def label_events(ids: list[str], truth: dict[str, tuple[str, str]]) -> list[bytes]:
    """The stand-in labeller: ground truth for each id, as LabelEvents."""
    return [
        orjson.dumps(
            {"id": i, "title": truth[i][0], "label": truth[i][1], "source": "bench stand-in labeller"}
        )
        for i in ids
    ]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.05)


def run_loop(bootstrap: str, work: Path, *, per_class: int, stream_size: int, held_out_share: float,
             review_threshold: float, min_gain: float, seed: int = 0) -> LoopResult:  # fmt: skip
    steps: dict[str, float] = {}
    commands: dict[str, str] = {}
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        steps[name] = now - clock
        clock = now

    # 1. The base dataset lacks the held-out style; the base model's vocabulary does not.
    everything = generate(per_class=per_class, seed=seed)
    write_jsonl(everything, work / "all.jsonl")
    write_jsonl([r for r in everything if not HELD_OUT.search(r.title)], work / "base.jsonl")
    base_model = build_tiny_base(work / "all.jsonl", work / "tiny-base", seed=seed)
    registry = work / "registry"
    cli("dataset", "build", "--jsonl", str(work / "base.jsonl"), "--out", str(work / "base"))
    train_args = [
        "--base-model",
        str(base_model),
        "--registry",
        str(registry),
        "--full-finetune",
        "--lr",
        "1e-3",
    ]
    cli("train", "--data", str(work / "base"), *train_args, "--seed", str(seed))
    first = read_current(registry / MODEL)
    step("tiny base + dataset build + train without the held-out style")

    streams = {
        name: make_stream(name, stream_size, held_out_share, seed=1000 + n)
        for n, name in enumerate(("before", "shadowed", "after"))
    }
    truth = {i: (t, c) for s in streams.values() for i, t, c in zip(s.ids, s.titles, s.truth, strict=True)}
    labels_topic = f"loop-{uuid.uuid4().hex[:8]}.labels"
    common: dict[str, Any] = {"registry": registry, "device": "cpu", "reload_interval_s": 0.2}

    # 2. The first stream, review routing on.
    review_topic = f"loop-{uuid.uuid4().hex[:8]}.review"
    review = scratch_settings(
        bootstrap, "loop-before", **common, review_threshold=review_threshold, review_topic=review_topic
    )
    ensure_topics(kafka_client_config(review), {review_topic: 1, labels_topic: 1})
    serving = load_model(registry, device="cpu", min_agreement=MIN_AGREEMENT)
    before = serve(review, FixedModel(serving), streams["before"])
    step("serve stream 1 (review routing)")

    # 3. The stand-in labeller answers what reached the review topic.
    reviewed_ids = [str(r["id"]) for r in before.reviewed]
    produce_values(label_events(reviewed_ids, truth), review.model_copy(update={"input_topic": labels_topic}))
    step("label the review topic")

    # 4. Labels into the dataset, a candidate from the live checkpoint.
    commands["from-topic"] = (
        f"prodcat dataset from-topic --labels-topic {labels_topic} --base base --out base+labels"
    )
    cli("dataset", "from-topic", "--labels-topic", labels_topic, "--base", str(work / "base"),
        "--out", str(work / "merged"), "--bootstrap-servers", bootstrap, "--idle-s", "2")  # fmt: skip
    cli("train", "--data", str(work / "merged"), *train_args, "--seed", str(seed + 1),
        "--resume-from", "CURRENT", "--candidate")  # fmt: skip
    candidate = (registry / MODEL / "CANDIDATE").read_text().strip()
    step("dataset from-topic + train --candidate")

    # 5. The second stream with the shadow on; its labels come once its events were compared.
    shadow = scratch_settings(
        bootstrap, "loop-shadow", **common, shadow_fraction=1.0, labels_topic=labels_topic
    )
    provider = ModelProvider(
        load_model(registry, device="cpu", min_agreement=MIN_AGREEMENT),
        registry,
        model_name=None,
        device="cpu",
        interval_s=0.2,
        min_agreement=MIN_AGREEMENT,
        max_tokens=shadow.max_batch_tokens,
    )

    def candidate_loaded() -> bool:
        provider.poll()
        return provider.candidate is not None

    wait_for(candidate_loaded, "the candidate loaded")
    summaries: list[ShadowSummary] = []
    write = summary_writer(shadow)

    def keep(summary: ShadowSummary) -> None:
        summaries.append(summary)
        write(summary)

    stream = streams["shadowed"]
    produce_values(
        [orjson.dumps({"id": i, "title": t}) for i, t in zip(stream.ids, stream.titles, strict=True)], shadow
    )
    service = CategorizerService(shadow, provider, on_shadow_summary=keep)
    started = time.perf_counter()
    worker = threading.Thread(target=service.run, daemon=True)
    worker.start()
    try:
        wait_for(
            lambda: bool(summaries) and summaries[-1].compared == len(stream.ids), "every event compared"
        )
        produce_values(
            label_events(stream.ids, truth), shadow.model_copy(update={"input_topic": labels_topic})
        )
        wait_for(lambda: summaries[-1].live.judged == len(stream.ids), "every label joined")
        final, reports = summaries[-1], len(summaries)
        # `keep` lists a summary before it writes it: once the next one is listed, this one is written.
        wait_for(lambda: len(summaries) > reports, "the judged summary written")
    finally:
        service.stop()
        worker.join(WAIT_S)
    shadowed = collect(shadow, stream, time.perf_counter() - started)
    step("serve stream 2 (shadow)")

    # 6. The gate.
    gate = [
        "--min-agreement",
        "0",
        "--min-live-accuracy-gain",
        str(min_gain),
        "--min-judged",
        str(stream_size),
    ]
    commands["promote"] = f"prodcat registry promote --candidate {candidate} {' '.join(gate)}"
    code = prodcat_main(["registry", "promote", "--registry", str(registry), "--candidate", candidate, *gate])
    promoted = code == 0 and read_current(registry / MODEL) == candidate and candidate != first
    step("registry promote --candidate")

    # 7. The third stream on whatever CURRENT is now.
    plain = scratch_settings(bootstrap, "loop-after", **common)
    after = serve(
        plain, FixedModel(load_model(registry, device="cpu", min_agreement=MIN_AGREEMENT)), streams["after"]
    )
    step("serve stream 3")
    return LoopResult(
        streams=streams,
        served={"before": before, "shadowed": shadowed, "after": after},
        labels_written=len(reviewed_ids) + len(stream.ids),
        candidate=candidate,
        promoted=promoted,
        summary=final,
        steps_s=steps,
        command_lines=commands,
    )


def report(result: LoopResult, args: argparse.Namespace) -> str:
    s = result.summary
    lines = [
        f"Tiny recipe (sample corpus, {args.per_class} titles a class, held-out style: watches); "
        f"streams of {args.stream_size} titles, {args.held_out_share:.0%} of them held-out; "
        f"review threshold {args.review_threshold}; torch threads {torch.get_num_threads()}.",
        "",
        "| stream | model | accuracy | on held-out style | flagged for review | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for name, model in (
        ("before", "first"),
        ("shadowed", "first (candidate shadowed)"),
        ("after", "promoted"),
    ):
        stream, served = result.streams[name], result.served[name]
        flagged = len(served.flagged) if served.reviewing else "off"
        lines.append(
            f"| {name} | {model} | {accuracy(stream, served):.3f} | "
            f"{accuracy(stream, served, stream.held_out):.3f} | {flagged} | {served.seconds:.1f} |"
        )
    live_gain = (s.live.candidate_correct - s.live.serving_correct) / max(1, s.live.judged)
    lines += [
        "",
        f"Review topic: {len(result.served['before'].reviewed)} events; "
        f"labels written: {result.labels_written}. "
        f"Shadow: {s.compared} compared, agreement {s.agreed / max(1, s.compared):.3f}, "
        f"{s.live.judged} judged, live accuracy serving {s.live.serving_correct / max(1, s.live.judged):.3f} "
        f"vs candidate {s.live.candidate_correct / max(1, s.live.judged):.3f} (gain {live_gain:+.3f}). "
        f"Candidate {result.candidate} {'promoted' if result.promoted else 'NOT promoted'}.",
        "",
        "Seconds per stream: the service's run from start to the last event accounted for, "
        "including joining the group (about 3 s on the embedded broker).",
        "",
        "| step | seconds |",
        "|---|---|",
        *(f"| {name} | {seconds:.1f} |" for name, seconds in result.steps_s.items()),
        "",
        *(f"`{line}`" for line in result.command_lines.values()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-class", type=int, default=400, help="training titles per class")
    parser.add_argument("--stream-size", type=int, default=300, help="titles per stream")
    parser.add_argument(
        "--held-out-share", type=float, default=0.3, help="share of held-out style per stream"
    )
    parser.add_argument("--review-threshold", type=float, default=0.9)
    parser.add_argument("--min-live-accuracy-gain", type=float, default=0.05)
    parser.add_argument("--update", type=Path, help="write the results into this Markdown file")
    args = parser.parse_args(argv)
    with kafka_broker() as bootstrap, tempfile.TemporaryDirectory(prefix="bench-loop-") as work:
        result = run_loop(
            bootstrap,
            Path(work),
            per_class=args.per_class,
            stream_size=args.stream_size,
            held_out_share=args.held_out_share,
            review_threshold=args.review_threshold,
            min_gain=args.min_live_accuracy_gain,
        )
    text = report(result, args)
    print(text)
    if args.update:
        record_result(args.update, SECTION, ".venv/bin/python -m bench.loop", text)
    return 0 if result.promoted else 1


if __name__ == "__main__":
    raise SystemExit(main())
