from prodcat.consumer.batcher import BatchLimits, LengthGrouper


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def grouper_factory(
    clock: FakeClock,
    *,
    max_items: int = 64,
    max_tokens: int = 10_000,
    max_wait_s: float = 60.0,
    window_items: int = 8,
) -> LengthGrouper[str]:
    return LengthGrouper(BatchLimits(max_items, max_tokens, max_wait_s, window_items), clock)


def test_nothing_is_cut_before_the_window_is_full_or_due() -> None:
    clock = FakeClock()
    grouper = grouper_factory(clock, max_wait_s=0.05)
    grouper.add("a", 5)
    clock.now += 0.049
    assert grouper.next_batch() is None


def test_a_window_is_cut_once_its_oldest_item_has_waited_max_wait() -> None:
    clock = FakeClock()
    grouper = grouper_factory(clock, max_wait_s=0.05)
    grouper.add("a", 5)
    clock.now += 0.02
    grouper.add("b", 5)
    clock.now += 0.03
    batch = grouper.next_batch()
    assert batch is not None and batch.items == ["a", "b"]


def test_a_full_window_is_cut_at_once() -> None:
    grouper = grouper_factory(FakeClock(), window_items=3)
    for item in "abc":
        grouper.add(item, 5)
    assert grouper.seconds_until_due() == 0.0
    batch = grouper.next_batch()
    assert batch is not None and batch.items == ["a", "b", "c"]


def test_titles_of_similar_length_share_a_batch() -> None:
    grouper = grouper_factory(FakeClock(), max_items=2, window_items=4)
    for item, tokens in (("long-1", 40), ("short-1", 4), ("long-2", 41), ("short-2", 5)):
        grouper.add(item, tokens)
    batches = grouper.flush()
    assert [b.items for b in batches] == [["short-1", "short-2"], ["long-1", "long-2"]]
    assert [b.padded_tokens for b in batches] == [10, 82]


def test_equal_lengths_keep_their_arrival_order() -> None:
    grouper = grouper_factory(FakeClock())
    for item in "dcba":
        grouper.add(item, 7)
    assert [b.items for b in grouper.flush()] == [["d", "c", "b", "a"]]


def test_a_batch_closes_before_its_padded_cost_passes_max_tokens() -> None:
    grouper = grouper_factory(FakeClock(), max_tokens=30)
    for item, tokens in (("a", 10), ("b", 10), ("c", 10), ("d", 11)):
        grouper.add(item, tokens)
    batches = grouper.flush()
    assert [b.items for b in batches] == [["a", "b", "c"], ["d"]]
    assert all(b.padded_tokens <= 30 for b in batches)


def test_a_batch_closes_at_max_items() -> None:
    grouper = grouper_factory(FakeClock(), max_items=3)
    for item in "abcde":
        grouper.add(item, 5)
    assert [b.items for b in grouper.flush()] == [["a", "b", "c"], ["d", "e"]]


def test_batches_count_their_real_and_padded_tokens() -> None:
    grouper = grouper_factory(FakeClock())
    for item, tokens in (("a", 3), ("b", 5)):
        grouper.add(item, tokens)
    (batch,) = grouper.flush()
    assert (batch.real_tokens, batch.padded_tokens) == (8, 10)


def test_a_full_window_takes_no_more_while_its_batches_wait() -> None:
    grouper = grouper_factory(FakeClock(), max_items=1, window_items=2)
    for item in "ab":
        grouper.add(item, 5)
    assert grouper.next_batch() is not None  # cuts the window into two batches, hands out one
    grouper.add("c", 5)
    grouper.add("d", 5)
    assert grouper.room() == 0
    assert len(grouper) == 3


def test_take_all_empties_the_grouper_of_batched_and_unbatched_items() -> None:
    grouper = grouper_factory(FakeClock(), max_items=1, window_items=2)
    for item in "ab":
        grouper.add(item, 5)
    grouper.next_batch()
    grouper.add("c", 5)
    assert sorted(grouper.take_all()) == ["b", "c"]
    assert len(grouper) == 0 and grouper.next_batch() is None


def test_an_idle_device_takes_the_window_before_it_is_due() -> None:
    clock = FakeClock()
    grouper = grouper_factory(clock, max_wait_s=60.0)
    grouper.add("b", 9)
    grouper.add("a", 2)

    batch = grouper.next_batch(idle=True)

    assert batch is not None and batch.items == ["a", "b"]
