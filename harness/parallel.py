"""Work on several items side by side (threads), each item's step log kept whole: the seeds of
a run's architectures and toolchains, the Kconfig groups of its resolve step."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TypeVar

from .container import write_log

T = TypeVar("T")
R = TypeVar("R")


class NamedBuffer(io.StringIO):
    """A step log kept in memory while its step runs beside others, named as the file it is
    written to afterwards (errors name that file)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


def side_by_side(log: IO[str], items: Sequence[T], work: Callable[[T, IO[str]], R],
                 workers: int) -> list[R]:
    """`work(item, its_log)` for every item in threads, at most `workers` at once; each item's
    log is kept in memory and written to `log` whole, in the items' order (and as far as it
    got when its work raised), so the steps of two items never interleave."""
    def one(item: T) -> tuple[R, str]:
        own = NamedBuffer(getattr(log, "name", "a log"))
        try:
            return work(item, own), own.getvalue()
        except BaseException:
            write_log(log, own.getvalue())  # what it did before it failed stays in the log
            raise

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        done = list(pool.map(one, items))
    for _result, text in done:
        write_log(log, text)
    return [result for result, _text in done]
