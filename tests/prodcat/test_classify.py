"""`prodcat classify`: lines in, the service's enriched events out, bad lines reported beside them."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from prodcat.classify import classify_stream
from prodcat.consumer.batcher import BatchLimits
from prodcat.consumer.classify.device import DeviceFailure
from prodcat.errors import InferenceUnavailable
from prodcat.model.loading import load_model
from prodcat.model.runtime import Inference, ServingModel
from tests.cli_runner import run_cli, run_cli_output

ENRICHED_SCHEMA = Draft202012Validator(
    orjson.loads((Path(__file__).resolve().parents[2] / "schemas/enriched_event.schema.json").read_bytes())
)
TITLES = ["Silk Scarf", "Leather Ankle Boots Size 39", "Stainless Steel Chef Knife", "Baby Stroller"]


def classify(
    capsys: pytest.CaptureFixture[str], registry: Path, source: Path, *flags: str
) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    code, out, err = run_cli_output(
        capsys, "classify", str(source), "--registry", str(registry), "--device", "cpu", *flags
    )
    return (
        code,
        [orjson.loads(line) for line in out.splitlines()],
        [orjson.loads(line) for line in err.splitlines()],
    )


def test_titles_become_enriched_events_valid_against_the_schema(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, trained_registry: Path
) -> None:
    source = tmp_path / "titles.txt"
    source.write_text("".join(f"{t}\n" for t in TITLES))
    code, events, errors = classify(capsys, trained_registry, source)
    assert (code, errors) == (0, [])
    for event in events:
        ENRICHED_SCHEMA.validate(event)
    assert [(e["id"], e["title"]) for e in events] == [(str(n), t) for n, t in enumerate(TITLES, start=1)]


def test_labels_are_those_of_the_model_the_service_loads(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, trained_registry: Path, corpus: Path
) -> None:
    titles = [orjson.loads(line)["title"] for line in corpus.read_bytes().splitlines()[:200]]
    source = tmp_path / "titles.txt"
    source.write_text("".join(f"{t}\n" for t in titles))
    _, events, _ = classify(capsys, trained_registry, source)
    expected = load_model(trained_registry, device="cpu", min_agreement=0.9).predict(titles, top_k=3)
    assert [e["classification"]["label"] for e in events] == [p.label for p in expected]
    assert [e["classification"]["confidence"] for e in events] == pytest.approx(
        [p.confidence for p in expected]
    )


def test_events_keep_their_own_fields_and_a_sent_classification_is_replaced(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, trained_registry: Path
) -> None:
    source = tmp_path / "events.jsonl"
    source.write_bytes(b'{"id": "p-7", "title": "Silk Scarf", "sku": "A-1", "classification": "stale"}\n')
    _, [event], _ = classify(capsys, trained_registry, source)
    assert (event["id"], event["sku"]) == ("p-7", "A-1")
    assert event["classification"]["model_name"] == "product-categorizer"
    ENRICHED_SCHEMA.validate(event)


def test_titles_are_batched_by_the_service_limits(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, trained_registry: Path
) -> None:
    source = tmp_path / "titles.txt"
    source.write_text("".join(f"{t} {n}\n" for n in range(5) for t in TITLES))
    _, events, _ = classify(capsys, trained_registry, source, "--max-batch-size", "3", "--window-size", "8")
    sizes = [e["classification"]["timings"]["batch_size"] for e in events]
    assert len(events) == 20 and max(sizes) == 3
    # Windows of 8 lines are classified in turn and written in input order.
    assert [e["id"] for e in events] == [str(n) for n in range(1, 21)]


def test_bad_lines_go_to_stderr_with_their_line_number_and_the_rest_is_classified(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, trained_registry: Path
) -> None:
    source = tmp_path / "mixed.txt"
    source.write_bytes(b'Silk Scarf\n{"id": "x"}\n\n{not json\n{"id": "y", "title": "  "}\nBaby Stroller\n')
    code, events, errors = classify(capsys, trained_registry, source, "--input", "auto")
    assert code == 0
    assert [e["title"] for e in events] == ["Silk Scarf", "Baby Stroller"]
    assert [(e["line"], e["error_kind"]) for e in errors] == [
        (2, "schema_violation"),
        (4, "invalid_json"),
        (5, "schema_violation"),
    ]


def test_titles_mode_reads_a_line_starting_with_a_brace_as_a_title(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, trained_registry: Path
) -> None:
    source = tmp_path / "titles.txt"
    source.write_text("{Braces} Storage Box\n")
    _, [event], _ = classify(capsys, trained_registry, source, "--input", "titles")
    assert event["title"] == "{Braces} Storage Box"


def test_a_missing_registry_gets_one_line_and_exit_code_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "titles.txt"
    source.write_text("Silk Scarf\n")
    code, err = run_cli(capsys, "classify", str(source), "--registry", str(tmp_path / "nowhere"))
    assert code == 1
    assert err.strip().splitlines() == [
        f"prodcat: error: no checkpoint at {tmp_path / 'nowhere'}: expected manifest.json or CURRENT"
    ]


def test_a_missing_input_file_gets_one_line_and_exit_code_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = run_cli(capsys, "classify", str(tmp_path / "absent.txt"))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "no such file" in err


def test_the_command_reads_stdin_in_a_process_of_its_own(trained_registry: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "prodcat.cli",
            "classify",
            "--registry",
            str(trained_registry),
            "--device",
            "cpu",
        ],
        input=b"Silk Scarf\nnot json but a title\n",
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    events = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [e["title"] for e in events] == ["Silk Scarf", "not json but a title"]
    for event in events:
        ENRICHED_SCHEMA.validate(event)


def test_stdin_is_read_when_no_file_is_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, trained_registry: Path
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Silk Scarf\n")))
    code, out, _ = run_cli_output(capsys, "classify", "--registry", str(trained_registry), "--device", "cpu")
    assert code == 0 and orjson.loads(out)["title"] == "Silk Scarf"


class BrokenModel:
    """A ServingModel whose every forward pass fails on a healthy device (a broken checkpoint)."""

    model_name = "broken"
    version = "v0"
    labels = ("A", "B")
    max_length = 16
    device = "cpu"

    def encode(self, titles: Sequence[str]) -> list[list[int]]:
        return [[1, 2, 3] for _ in titles]

    def infer(self, rows: Sequence[Sequence[int]], *, top_k: int, embeddings: bool = False) -> Inference:
        raise RuntimeError("forward pass failed")

    def health(self) -> None:
        return None


class LostDevice(BrokenModel):
    """The same model on a device that is gone: its health check fails too."""

    def health(self) -> None:
        raise RuntimeError("device lost")


def test_a_model_that_fails_on_every_title_stops_the_run() -> None:
    model: ServingModel = BrokenModel()
    out, errors = io.BytesIO(), io.BytesIO()
    with pytest.raises(InferenceUnavailable, match="4 titles in a row failed"):
        classify_stream(
            [b"a\n", b"b\n", b"c\n", b"d\n"],
            model,
            BatchLimits(),
            top_k=1,
            out=out,
            errors=errors,
            max_failed_in_a_row=4,
        )
    assert out.getvalue() == b""
    assert [orjson.loads(line)["error_kind"] for line in errors.getvalue().splitlines()] == [
        "inference_failed"
    ] * 4


def test_a_lost_device_stops_the_run_at_the_first_batch_without_error_lines() -> None:
    model: ServingModel = LostDevice()
    out, errors = io.BytesIO(), io.BytesIO()
    with pytest.raises(DeviceFailure, match="device lost"):
        classify_stream(
            [b"a\n", b"b\n", b"c\n", b"d\n"],
            model,
            BatchLimits(),
            top_k=1,
            out=out,
            errors=errors,
            max_failed_in_a_row=4,
        )
    assert out.getvalue() == b"" and errors.getvalue() == b""
