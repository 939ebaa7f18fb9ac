import pytest

from prodcat.consumer.batcher import Batcher, BatchLimits


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def batcher_factory(clock: FakeClock, **limits: float) -> Batcher[str]:
    return Batcher(BatchLimits(**limits), clock)  # type: ignore[arg-type]


def test_a_batch_closes_when_it_reaches_max_items() -> None:
    batcher = batcher_factory(FakeClock(), max_items=3, max_tokens=10_000, max_wait_s=60)
    for item in "abcd":
        batcher.add(item, tokens=5)
    assert batcher.ready() == [["a", "b", "c"]]
    assert len(batcher) == 1


def test_a_batch_is_not_ready_before_its_oldest_item_waited_max_wait() -> None:
    clock = FakeClock()
    batcher = batcher_factory(clock, max_items=10, max_tokens=10_000, max_wait_s=0.05)
    batcher.add("a", tokens=5)
    clock.now += 0.049
    assert batcher.ready() == []
    clock.now += 0.002
    assert batcher.ready() == [["a"]]


def test_the_wait_is_counted_from_the_first_item_of_the_batch() -> None:
    clock = FakeClock()
    batcher = batcher_factory(clock, max_items=10, max_tokens=10_000, max_wait_s=1.0)
    batcher.add("a", tokens=5)
    clock.now += 0.6
    batcher.add("b", tokens=5)
    assert batcher.seconds_until_due() == pytest.approx(0.4)


def test_a_batch_closes_before_its_padded_token_cost_exceeds_the_budget() -> None:
    batcher = batcher_factory(FakeClock(), max_items=100, max_tokens=40, max_wait_s=60)
    batcher.add("short-1", tokens=5)
    batcher.add("short-2", tokens=5)
    # 20 tokens x 3 rows = 60 > 40: the long title starts a new batch.
    batcher.add("long", tokens=20)
    assert batcher.ready() == [["short-1", "short-2"]]
    assert batcher.flush() == [["long"]]


def test_a_single_item_over_the_budget_still_forms_a_batch() -> None:
    batcher = batcher_factory(FakeClock(), max_items=100, max_tokens=10, max_wait_s=60)
    batcher.add("huge", tokens=50)
    assert batcher.flush() == [["huge"]]


def test_flush_returns_everything_waiting_in_arrival_order() -> None:
    batcher = batcher_factory(FakeClock(), max_items=2, max_tokens=10_000, max_wait_s=60)
    for item in "abcde":
        batcher.add(item, tokens=1)
    assert batcher.flush() == [["a", "b"], ["c", "d"], ["e"]]
    assert len(batcher) == 0
    assert batcher.seconds_until_due() is None


def test_invalid_limits_are_rejected() -> None:
    with pytest.raises(ValueError, match="invalid batch limits"):
        BatchLimits(max_items=0)
