"""Work side by side with each item's log kept whole, in the items' order."""

from __future__ import annotations

import io
import time
from typing import IO

import pytest

from harness.parallel import side_by_side


def test_results_and_logs_come_in_the_items_order_never_interleaved() -> None:
    log = io.StringIO()

    def work(n: int, own: IO[str]) -> int:
        own.write(f"{n} starts\n")
        time.sleep(0.05 * (3 - n))  # the first item finishes last
        own.write(f"{n} ends\n")
        return n * n

    assert side_by_side(log, [1, 2, 3], work, 3) == [1, 4, 9]
    assert log.getvalue() == "1 starts\n1 ends\n2 starts\n2 ends\n3 starts\n3 ends\n"


def test_a_failing_item_leaves_what_it_wrote_in_the_log() -> None:
    log = io.StringIO()

    def work(n: int, own: IO[str]) -> int:
        own.write(f"{n} ran\n")
        if n == 2:
            raise RuntimeError("no")
        return n

    with pytest.raises(RuntimeError):
        side_by_side(log, [1, 2], work, 1)
    assert "2 ran\n" in log.getvalue()
