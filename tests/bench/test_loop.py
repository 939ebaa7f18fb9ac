"""The learning-loop benchmark at its smallest: a model that never saw watches serves a stream
with watches; the events it is unsure of reach the review topic, their labels come back, a
candidate is trained, shadowed, promoted by the gate, and serves the last stream. Accuracy is
reported, not checked against a number; the flow is."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.loop import accuracy, report, run_loop

STREAM = 60


def test_flagged_events_come_back_labelled_and_the_candidate_they_train_is_shadowed_and_promoted(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    result = run_loop(
        kafka_bootstrap,
        tmp_path,
        per_class=100,
        stream_size=STREAM,
        held_out_share=0.3,
        review_threshold=0.9,
        min_gain=0.05,
    )

    before, after = result.served["before"], result.served["after"]
    # Every event of every stream enriched once (no dead letters); the flagged ones reviewed.
    for name, served in result.served.items():
        assert (len(served.labels), served.dead_letters) == (STREAM, 0), name
        assert set(served.labels) == set(result.streams[name].ids), name
    assert before.flagged
    assert {str(r["id"]) for r in before.reviewed} == before.flagged
    assert result.labels_written == len(before.flagged) + STREAM
    summary = result.summary
    assert (summary.candidate_version, summary.compared, summary.live.judged) == (
        result.candidate,
        STREAM,
        STREAM,
    )
    assert result.promoted
    held_out = result.streams["after"].held_out
    assert accuracy(result.streams["after"], after, held_out) > accuracy(
        result.streams["before"], before, result.streams["before"].held_out
    )
    table = report(
        result,
        argparse.Namespace(per_class=100, stream_size=STREAM, held_out_share=0.3, review_threshold=0.9),
    )
    assert f"Candidate {result.candidate} promoted." in table
