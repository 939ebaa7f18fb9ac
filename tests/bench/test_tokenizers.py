"""The tokenizer benchmark finishes on a few titles and finds the same ids everywhere it must;
no speed is checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.tokenizers import main


def table_rows(output: str) -> dict[str, list[str]]:
    """Each contender's row of the printed table, by name."""
    rows = [line.strip("|").split("|") for line in output.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


def test_every_contender_runs_and_the_hugging_face_paths_and_the_pool_give_the_reference_ids(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            f"--data={corpus}",
            "--titles=120",
            "--batch=25",
            "--repeats=1",
            "--probe=100",
            "--threads=1,2",
            "--no-bpe-qwen",
        ]
    )
    rows = table_rows(capsys.readouterr().out)
    assert code == 0
    same_ids = [
        "HF `encode_batch` (reference)",
        "HF `encode_batch_fast`",
        "pool, 1 thread (`encode_batch_fast`), caller waiting",
        "pool, 1 thread (`encode_batch_fast`), caller busy in Python",
        "pool, 2 threads (`encode_batch_fast`), caller waiting",
        "pool, 2 threads (`encode_batch_fast`), caller busy in Python",
    ]
    assert set(same_ids) <= set(rows)
    # Columns: titles/s, ratio, caller µs, caller speed, differing on titles, differing on the probe.
    assert [rows[name][4] for name in same_ids] == ["0"] * len(same_ids)
    assert [rows[name][5] for name in same_ids] == ["0"] * len(same_ids)
