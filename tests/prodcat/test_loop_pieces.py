"""The learning loop's pieces composed on real models and a real labels topic, in the order the
service is meant to call them: a weak model serves, a strong candidate is shadowed on sampled batches, labels
arrive on the topic, the summary is written beside the candidate, and the gate promotes it."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import orjson
import pytest

from prodcat.consumer.client_config import kafka_client_config
from prodcat.consumer.embeddings import decode_embedding, embedding_fields
from prodcat.consumer.review import ReviewPolicy
from prodcat.consumer.shadow import ShadowJudge, verdicts, write_summary
from prodcat.consumer.source import TopicTail
from prodcat.model.checkpoint import read_current, resolve
from prodcat.model.loading import load_model
from prodcat.model.registry import open_registry
from prodcat.model.runtime import TorchModel
from prodcat.produce import produce_values
from prodcat.schemas.events import EmbeddingVector
from prodcat.scratch import scratch_settings
from prodcat.trainer.records import LabeledTitle, write_jsonl
from prodcat.trainer.sample_corpus import generate
from prodcat.trainer.train import TrainConfig, train
from tests.cli_runner import run_cli

MODEL = "product-categorizer"
BATCH = 16


@pytest.fixture(scope="module")
def registry(tiny_base: Path, trained_registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CURRENT: a model that barely trained (weak); `strong`: the session's trained checkpoint."""
    root = tmp_path_factory.mktemp("loop")
    data = root / "titles.jsonl"
    write_jsonl(generate(per_class=20, seed=5), data)
    train(
        TrainConfig(
            data=data,
            base_model=str(tiny_base),
            registry=root / "registry",
            full_finetune=True,
            learning_rate=1e-9,
            batch_size=16,
            progress=False,
        )
    )
    shutil.copytree(resolve(trained_registry / MODEL), root / "registry" / MODEL / "strong")
    return root / "registry"


def load(directory: Path) -> TorchModel:
    return load_model(directory, device="cpu", min_agreement=0.9)


def test_a_stronger_candidate_proves_itself_on_the_stream_and_is_promoted(
    registry: Path, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = registry / MODEL
    serving, candidate = load(resolve(model_dir)), load(model_dir / "strong")
    stream = [LabeledTitle(r.title, r.category) for r in generate(per_class=24, seed=21)]
    ids = [f"p{n}" for n in range(len(stream))]
    judge = ShadowJudge(
        model_name=MODEL,
        serving_version=serving.version,
        candidate_version="strong",
        labels=serving.labels,
        member="loop.test.0",
        fraction=0.5,
    )
    policy = ReviewPolicy(threshold=0.5)
    flagged = {"serving": 0, "candidate": 0}
    for start in range(0, len(stream), BATCH):
        titles = [r.title for r in stream[start : start + BATCH]]
        served = serving.infer(serving.encode(titles), top_k=2, embeddings=True)
        flagged["serving"] += sum(policy.reason(s) is not None for s in served.scores)
        assert served.embeddings is not None
        embedded = [
            decode_embedding(EmbeddingVector.model_validate(f)) for f in embedding_fields(served.embeddings)
        ]
        assert {e.shape for e in embedded} == {(served.embeddings.shape[1],)}
        if judge.sample_next_batch():
            shadowed = candidate.infer(candidate.encode(titles), top_k=2)
            flagged["candidate"] += sum(policy.reason(s) is not None for s in shadowed.scores)
            judge.observe(
                ids[start : start + BATCH],
                verdicts(serving.labels, served.indices, served.scores),
                verdicts(candidate.labels, shadowed.indices, shadowed.scores),
            )

    settings = scratch_settings(kafka_bootstrap, "loop-labels")
    tail = TopicTail(kafka_client_config(settings), settings.input_topic)
    tail.start()
    try:
        produce_values(
            [
                orjson.dumps({"id": i, "title": r.title, "label": r.category, "source": "ground truth"})
                for i, r in zip(ids, stream, strict=True)
            ],
            settings,
        )
        deadline, arrived = time.monotonic() + 30, 0
        while arrived < len(stream) and time.monotonic() < deadline:
            for record in tail.poll(500):
                judge.label_record(record.value)
                arrived += 1
    finally:
        tail.close()
    summary = judge.summary()
    write_summary(open_registry(registry), MODEL, summary)
    capsys.readouterr()  # the model loads' progress bars, so the command's stderr is read alone

    code, err = run_cli(
        capsys,
        "registry",
        "promote",
        "--registry",
        str(registry),
        "--candidate",
        "strong",
        "--min-agreement",
        "0",
        "--min-live-accuracy-gain",
        "0.3",
        "--min-judged",
        "50",
    )

    # 144 titles in 9 batches, every second one sampled: batches 1, 3, 5 and 7.
    assert (summary.batches_sampled, summary.compared, summary.live.judged) == (4, 64, 64)
    assert summary.live.candidate_correct - summary.live.serving_correct > 0.3 * 64
    assert flagged["serving"] > flagged["candidate"]
    assert (code, err, read_current(model_dir)) == (0, "", "strong")
