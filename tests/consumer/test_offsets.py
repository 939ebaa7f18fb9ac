from prodcat.consumer.offsets import OffsetTracker

TP = ("products.raw", 0)
OTHER = ("products.raw", 1)


def test_nothing_is_committable_until_the_first_offset_is_done() -> None:
    tracker = OffsetTracker()
    for offset in (10, 11, 12):
        state = tracker.track(TP, offset)
    state.mark_done(11)
    state.mark_done(12)
    assert tracker.to_commit() == {}


def test_the_commit_offset_is_one_past_the_last_contiguous_done_offset() -> None:
    tracker = OffsetTracker()
    for offset in (10, 11, 12, 13):
        state = tracker.track(TP, offset)
    for offset in (12, 10, 11):
        state.mark_done(offset)
    assert tracker.to_commit() == {TP: 13}
    assert tracker.pending() == 1


def test_an_offset_already_committed_is_not_offered_again() -> None:
    tracker = OffsetTracker()
    tracker.track(TP, 0).mark_done(0)
    tracker.committed(tracker.to_commit())
    assert tracker.to_commit() == {}


def test_to_commit_can_be_limited_to_some_partitions() -> None:
    tracker = OffsetTracker()
    for tp in (TP, OTHER):
        tracker.track(tp, 5).mark_done(5)
    assert tracker.to_commit({OTHER}) == {OTHER: 6}


def test_acknowledgements_for_a_forgotten_partition_are_ignored() -> None:
    tracker = OffsetTracker()
    state = tracker.track(TP, 0)
    tracker.forget({TP})
    state.mark_done(0)
    assert tracker.to_commit() == {}
    assert tracker.pending() == 0


def test_an_offset_expecting_two_outputs_is_done_only_once_both_are_acknowledged() -> None:
    tracker = OffsetTracker()
    for offset in (10, 11):
        state = tracker.track(TP, offset)
    state.expect(10, 2)
    state.mark_done(10)
    state.mark_done(11)
    assert tracker.to_commit() == {}
    state.mark_done(10)
    assert tracker.to_commit() == {TP: 12}
    assert not state.awaiting
