"""Real classifiers with a fault injected, for the tests of what the service does about it."""

from __future__ import annotations

from collections.abc import Sequence

from prodcat.consumer.classify.runtime import Classifier, Prediction


class PoisonSensitiveClassifier(Classifier):
    """The real classifier, except that any batch holding a poison title fails as a whole,
    as a batch does when one input breaks the forward pass."""

    POISON = "\u2620"

    def __init__(self, real: Classifier) -> None:
        self.__dict__.update(real.__dict__)

    def predict(self, titles: Sequence[str], *, top_k: int) -> list[Prediction]:
        if any(self.POISON in t for t in titles):
            raise RuntimeError("forward pass failed")
        return super().predict(titles, top_k=top_k)


class BrokenDeviceClassifier(Classifier):
    """The real classifier on a device that fails every forward pass."""

    def __init__(self, real: Classifier) -> None:
        self.__dict__.update(real.__dict__)

    def predict(self, titles: Sequence[str], *, top_k: int) -> list[Prediction]:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")
