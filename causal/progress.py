"""Progress bars for long work: shown on a terminal, silent in CI, tests and rendered reports."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], *, desc: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a tqdm bar on an interactive terminal only.

    Examples
    --------
    >>> list(progress([1, 2], desc="placebos"))  # not a terminal here: no bar
    [1, 2]
    """
    quiet = not sys.stderr.isatty() or bool(os.environ.get("CI"))
    if quiet:
        return iter(items)
    from tqdm.auto import tqdm

    return iter(tqdm(items, desc=desc, total=total, leave=False))
