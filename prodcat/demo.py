"""`prodcat demo`: the whole system on one machine, from nothing to a categorized stream."""

from __future__ import annotations

import random
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import orjson

from prodcat.broker import EmbeddedBroker
from prodcat.cli_env import kafka_bootstrap_from_env
from prodcat.consumer.classify.provider import FixedModel
from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.config import ConsumerSettings
from prodcat.consumer.service import CategorizerService, RunSummary
from prodcat.consumer.source import read_topic
from prodcat.model.loading import load_model
from prodcat.model.runtime import ServingModel
from prodcat.produce import produce_values
from prodcat.scratch import scratch_settings
from prodcat.signals import install_stop_signals
from prodcat.trainer.sample_corpus import LabeledTitle, generate, write_jsonl
from prodcat.trainer.tiny_base import build_tiny_base
from prodcat.trainer.train import TrainConfig, train

PARTITIONS = 3
DEMO_EPOCHS = 2.0
DEMO_LEARNING_RATE = 1e-3
BRANDS = ("Acme", "Northwind", "Globex", "Initech", None)

MALFORMED: tuple[bytes, ...] = (
    b'{"id": "bad-truncated", "title": "Leather Ankle Boots',
    b"plain text, not JSON",
    b'["an", "array", "of", "strings"]',
    b'{"id": "bad-no-title", "brand": "Acme"}',
    b'{"id": "bad-blank-title", "title": "   "}',
    b'{"id": "bad-price", "title": "Baby Bib 3 Pack", "price": -4.5}',
    b'{"title": "Road Atlas of Europe 2024 (Spiral-bound)"}',
    orjson.dumps({"id": "bad-huge-title", "title": "Necklace " * 400}),
)


@dataclass(frozen=True)
class DemoOptions:
    work_dir: Path
    events: int = 300
    per_class: int = 400
    epochs: float | None = None
    device: str = "auto"


def demo_events(
    count: int, training: list[LabeledTitle], seed: int = 7
) -> tuple[list[bytes], dict[str, str]]:
    """Valid events built from titles the model was not trained on, plus the malformed set."""
    seen = {r.title for r in training}
    fresh = [r for r in generate(per_class=max(50, count), seed=seed) if r.title not in seen]
    rng = random.Random(seed)
    valid = fresh[: max(0, count - len(MALFORMED))]
    expected: dict[str, str] = {}
    values: list[bytes] = []
    for n, record in enumerate(valid):
        event_id = f"sku-{n:05d}"
        expected[event_id] = record.category
        brand = rng.choice(BRANDS)
        event = {"id": event_id, "title": record.title, "price": round(rng.uniform(3, 300), 2)}
        if brand:
            event["brand"] = brand
        event["source_shop"] = "demo"
        values.append(orjson.dumps(event))
    values.extend(MALFORMED[: count - len(valid)])
    rng.shuffle(values)
    return values, expected


def read_documents(settings: ConsumerSettings, topic: str, count: int) -> list[dict[str, object]]:
    """Reads `count` records of a topic as a downstream subscriber would see them."""
    records = read_topic(kafka_client_config(settings), topic, expected=count, timeout_s=60.0)
    return [orjson.loads(r.value or b"null") for r in records]


def _prepare_model(options: DemoOptions) -> tuple[Path, list[LabeledTitle]]:
    options.work_dir.mkdir(parents=True, exist_ok=True)
    corpus_path = options.work_dir / "sample_corpus.jsonl"
    corpus = generate(per_class=options.per_class, seed=0)
    write_jsonl(corpus, corpus_path)
    print(f"[1/4] sample corpus: {len(corpus)} titles -> {corpus_path}")
    base = build_tiny_base(corpus_path, options.work_dir / "tiny-base")
    print(f"[2/4] tiny Qwen3 base model: {base}")
    registry = options.work_dir / "registry"
    result = train(
        TrainConfig(
            data=corpus_path,
            base_model=str(base),
            registry=registry,
            full_finetune=True,
            epochs=options.epochs or DEMO_EPOCHS,
            learning_rate=DEMO_LEARNING_RATE,
        )
    )
    metrics = ", ".join(f"{k} {v:.3f}" for k, v in sorted(result.metrics.items()))
    print(f"[3/4] trained and published {result.checkpoint} ({metrics})")
    return registry, corpus


def _print_report(
    enriched: list[dict[str, object]], dead: list[dict[str, object]], expected: dict[str, str]
) -> None:
    print()
    print(f"{'title':<62} {'category':<11} {'conf':>5}  expected")
    for event in enriched[:15]:
        verdict = event["classification"]
        assert isinstance(verdict, dict)
        title = str(event["title"])
        print(
            f"{title[:60]:<62} {verdict['label']:<11} {verdict['confidence']:>5.2f}  "
            f"{expected.get(str(event['id']), '?')}"
        )
    correct = sum(
        1
        for e in enriched
        if isinstance(e["classification"], dict)
        and e["classification"]["label"] == expected.get(str(e["id"]))
    )
    print(f"... {len(enriched)} enriched in all; {correct} match the generator's label")
    kinds = Counter(str(d["error_kind"]) for d in dead)
    print(f"dead-lettered {len(dead)}: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))


def _categorize(settings: ConsumerSettings, classifier: ServingModel, records: int) -> RunSummary:
    # The service (and its producer) ends here, before the broker stops under it.
    service = CategorizerService(settings, FixedModel(classifier))
    install_stop_signals(service.stop)
    return service.run(until_records=records)


def run_demo(options: DemoOptions) -> int:
    registry, corpus = _prepare_model(options)
    with ExitStack() as stack:
        bootstrap = kafka_bootstrap_from_env()
        if bootstrap is None:
            broker = stack.enter_context(EmbeddedBroker())
            bootstrap = broker.bootstrap_servers
            where = f"embedded Tansu broker at {bootstrap}"
        else:
            where = f"Kafka at {bootstrap}"
        settings = scratch_settings(
            bootstrap, "demo", partitions=PARTITIONS, registry=registry, device=options.device
        )
        values, expected = demo_events(options.events, corpus)
        produced = produce_values(values, settings)
        print(f"[4/4] produced {produced} events ({produced - len(expected)} malformed) to {where}")

        classifier = load_model(
            settings.registry, device=settings.device, min_agreement=settings.min_golden_agreement
        )
        summary = _categorize(settings, classifier, produced)
        enriched = read_documents(settings, settings.output_topic, summary.enriched)
        dead = read_documents(settings, settings.dead_letter_topic, summary.dead_lettered)
    _print_report(enriched, dead, expected)
    accounted = summary.enriched + summary.dead_lettered
    print(
        f"\nevents in {summary.consumed}, enriched out {summary.enriched}, "
        f"dead-lettered {summary.dead_lettered}; {summary.per_second:.0f} events/s "
        f"on {classifier.device} (model {classifier.version})"
    )
    return 0 if accounted == produced and len(enriched) == summary.enriched else 1
