"""`prodcat classify`: titles or JSON events, one per line, to enriched JSON lines, without Kafka.

For a quick look and for backfills. Each line is validated as the service validates a
record (`consumer/parse.py`); the valid ones are tokenized in one call, length-grouped and
cut into batches by the service's grouper (`consumer/batcher.py`), and run on the
service's device worker (a failing batch is halved, so one bad title fails alone). Output
lines are the service's enriched events (`consumer/outputs.py`), in input order.

A line is an event when it starts with `{` (`--input auto`), else a title, which becomes
the event `{"id": "<line number>", "title": ...}`. A line that cannot be classified is
written to stderr as one JSON object: its line number and the dead-letter `error_kind`
and `error_message` the service would give it; blank lines are skipped. A model that fails
on every title stops the run instead (`--max-failed-in-a-row`, as in the service). Lines are read a
window (`--window-size`) at a time, so memory stays bounded on any input size.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import BinaryIO, Literal

import orjson

from prodcat.consumer.batcher import Batch, BatchLimits, LengthGrouper
from prodcat.consumer.classify.device import Completion, DeviceBatch, DeviceWorker
from prodcat.consumer.outputs import classification, enriched_value
from prodcat.consumer.parse import Rejection, parse_event
from prodcat.errors import InferenceUnavailable
from prodcat.model.runtime import ServingModel
from prodcat.schemas.events import MAX_EVENT_BYTES, ErrorKind

InputFormat = Literal["auto", "titles", "events"]

CLOSE_TIMEOUT_S = 30.0


@dataclass(slots=True)
class Line:
    number: int
    value: bytes
    replaces_field: bool = False
    accepted_at: float = 0.0
    ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Summary:
    classified: int = 0
    rejected: int = 0
    failed_in_a_row: int = 0


def classify_stream(
    lines: Iterable[bytes],
    model: ServingModel,
    limits: BatchLimits,
    *,
    top_k: int,
    out: BinaryIO,
    errors: BinaryIO,
    input_format: InputFormat = "auto",
    max_failed_in_a_row: int = 16,
) -> Summary:
    """Classifies every line of `lines`, writing enriched events to `out` and error lines to `errors`.

    As in the service, a model that fails on every title is a failure of the run, not of the
    lines: InferenceUnavailable once `max_failed_in_a_row` titles failed with no success between.
    """
    summary = Summary()
    worker: DeviceWorker[Line] = DeviceWorker(top_k=top_k)
    try:
        numbered = enumerate(lines, start=1)
        while window := list(islice(numbered, limits.window_items)):
            _classify_window(window, model, limits, worker, out, errors, input_format, summary)
            if summary.failed_in_a_row >= max_failed_in_a_row:
                raise InferenceUnavailable(
                    f"{summary.failed_in_a_row} titles in a row failed on their own, none succeeded; "
                    "the model or its device is broken"
                )
    finally:
        # A device that hangs must not hang the command: the worker thread is a daemon.
        worker.close(timeout_s=CLOSE_TIMEOUT_S)
    return summary


def _classify_window(
    window: list[tuple[int, bytes]],
    model: ServingModel,
    limits: BatchLimits,
    worker: DeviceWorker[Line],
    out: BinaryIO,
    errors: BinaryIO,
    input_format: InputFormat,
    summary: Summary,
) -> None:
    now = time.monotonic()
    accepted: list[tuple[Line, str]] = []
    for number, raw in window:
        text = raw.strip()
        if not text:
            continue
        line = Line(number, _as_event(text, number, input_format), accepted_at=now)
        parsed = parse_event(line.value, MAX_EVENT_BYTES)
        if isinstance(parsed, Rejection):
            _reject(errors, number, parsed.kind, parsed.message, summary)
            continue
        extra = parsed.model_extra
        line.replaces_field = extra is not None and "classification" in extra
        accepted.append((line, parsed.title))
    grouper: LengthGrouper[Line] = LengthGrouper(limits, time.monotonic)
    for (line, _), ids in zip(accepted, _encode(model, [t for _, t in accepted]), strict=True):
        if isinstance(ids, Exception):
            _reject(errors, line.number, ErrorKind.UNENCODABLE, f"{type(ids).__name__}: {ids}", summary)
            continue
        line.ids = ids
        grouper.add(line, len(ids))
    results: dict[int, tuple[Completion[Line], int]] = {}
    for completion in _run(worker, model, grouper.flush()):
        for row, line in enumerate(completion.batch.items):
            results[line.number] = (completion, row)
    for line, _ in accepted:
        if line.number not in results:
            continue
        completion, row = results[line.number]
        failure = completion.failures.get(row)
        if failure is not None:
            message = f"{type(failure).__name__}: {failure}"
            _reject(errors, line.number, ErrorKind.INFERENCE_FAILED, message, summary)
            summary.failed_in_a_row += 1
            continue
        summary.failed_in_a_row = 0
        verdict = classification(
            model,
            completion.indices[row],
            completion.scores[row],
            queued_s=max(0.0, completion.started_at - line.accepted_at),
            inference_s=completion.seconds,
            batch_size=len(completion.batch.items),
        )
        out.write(enriched_value(line.value, verdict, replaces_field=line.replaces_field) + b"\n")
        summary.classified += 1
    out.flush()


def _as_event(text: bytes, number: int, input_format: InputFormat) -> bytes:
    if input_format == "events" or (input_format == "auto" and text.startswith(b"{")):
        return text
    try:
        title = text.decode()
    except UnicodeDecodeError:
        # Left for the parser to reject, as the service rejects bytes that are not JSON text.
        return text
    return orjson.dumps({"id": str(number), "title": title})


def _encode(model: ServingModel, titles: list[str]) -> list[list[int] | Exception]:
    """Token ids per title in one call; a title the tokenizer rejects gets its error instead."""
    try:
        return list(model.encode(titles))
    except Exception:
        encoded: list[list[int] | Exception] = []
        for title in titles:
            try:
                encoded.append(model.encode([title])[0])
            except Exception as exc:
                encoded.append(exc)
        return encoded


def _run(
    worker: DeviceWorker[Line], model: ServingModel, batches: list[Batch[Line]]
) -> Iterator[Completion[Line]]:
    pending = list(batches)
    while pending or worker.outstanding:
        while pending and worker.has_room():
            batch = pending.pop(0)
            worker.submit(
                DeviceBatch(
                    model=model,
                    rows=[line.ids for line in batch.items],
                    items=batch.items,
                    padded_tokens=batch.padded_tokens,
                    real_tokens=batch.real_tokens,
                )
            )
        yield from worker.collect(timeout_s=1.0)


def _reject(errors: BinaryIO, number: int, kind: ErrorKind, message: str, summary: Summary) -> None:
    errors.write(orjson.dumps({"line": number, "error_kind": kind.value, "error_message": message}) + b"\n")
    errors.flush()
    summary.rejected += 1
