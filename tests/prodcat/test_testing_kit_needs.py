"""What the test kit needs installed: its Docker branch's broker, and training without the `train` extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from prodcat.testing import KAFKA_IMAGE, kafka_container


def test_the_docker_branch_runs_the_pinned_kafka_image_in_kraft_mode() -> None:
    # A fixed API version: docker-py then builds its client without asking an engine (none here).
    container = kafka_container({"version": "1.44"})
    # What start() does before it runs anything: the environment the broker boots with.
    container.configure()

    assert container.image == KAFKA_IMAGE
    assert container.env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert container.env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert "KAFKA_ZOOKEEPER_CONNECT" not in container.env


def test_the_docker_branch_listens_for_clients_on_its_exposed_port() -> None:
    container = kafka_container({"version": "1.44"})
    container.configure()

    listeners = container.env["KAFKA_LISTENERS"].split(",")
    assert f"PLAINTEXT://0.0.0.0:{container.port}" in listeners
    assert "CONTROLLER://0.0.0.0:9094" in listeners
    assert list(container.ports) == [str(container.port)]


def test_a_full_fine_tune_publishes_without_peft_or_pyarrow(tiny_base: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "titles.jsonl"
    corpus.write_text(
        "".join(
            f'{{"title": "{title} {n}", "category": "{category}"}}\n'
            for n in range(8)
            for title, category in [
                ("Baby Wipes", "Baby"),
                ("Road Atlas", "Books"),
                ("Car Wax", "Automotive"),
                ("Silk Scarf", "Clothing"),
                ("Silver Ring", "Jewelry"),
                ("Ankle Boots", "Shoes"),
            ]
        )
    )
    # None in sys.modules makes `import peft` fail as if it were not installed.
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path

        sys.modules["peft"] = None
        sys.modules["pyarrow"] = None
        from prodcat.trainer.train import TrainConfig, train

        result = train(TrainConfig(
            data=Path({str(corpus)!r}), base_model={str(tiny_base)!r}, registry=Path({str(tmp_path / "r")!r}),
            full_finetune=True, batch_size=16, progress=False,
        ))
        print(result.checkpoint.name)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "r" / "product-categorizer" / done.stdout.strip() / "manifest.json").is_file()
