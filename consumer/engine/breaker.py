"""The breaker: a model, device or tokenizer that fails on every title stops the member.

Without it such a failure would empty the stream into the dead-letter topic. Titles that
fail on their own count, on the device or in the tokenizer; a classified title resets the
count. Stopping leaves the failed titles' offsets uncommitted, so a healthy restart
classifies them.
"""

from __future__ import annotations

from prodcat.errors import InferenceUnavailable


class FailureBreaker:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._in_a_row = 0

    def succeeded(self) -> None:
        self._in_a_row = 0

    def failed(self, count: int, *, others_succeeded: bool, last_error: str, what: str) -> None:
        """Counts titles that failed alone; raises before they would be dead-lettered when
        none of their batch succeeded and the count reached the limit."""
        self._in_a_row += count
        if not others_succeeded and self._in_a_row >= self._limit:
            raise InferenceUnavailable(
                f"{self._in_a_row} titles in a row failed {what} on their own, none succeeded; "
                f"the model or its device is broken (last error: {last_error[:200]})"
            )
