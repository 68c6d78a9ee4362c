"""Parameter checks shared by the bundled simulators (each keeps its own wording of the
error, which names the parameter and its allowed range)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from causal.errors import SpecError


def is_whole(value: object) -> bool:
    """A whole number; integral floats count, because command-line and YAML parameters may
    arrive as ``2e4``.

    Examples
    --------
    >>> is_whole(2e4), is_whole(2.5), is_whole(True), is_whole(float("inf"))
    (True, False, False, False)
    """
    return (isinstance(value, int | np.integer) and not isinstance(value, bool)) or (
        isinstance(value, float) and value.is_integer()
    )


def is_number(value: object) -> bool:
    """A finite real number (booleans are not numbers here).

    Examples
    --------
    >>> is_number(0.5), is_number(np.nan), is_number(False)
    (True, False, False)
    """
    return (
        isinstance(value, int | float | np.number)
        and not isinstance(value, bool)
        and bool(np.isfinite(value))
    )


def start_date(value: object) -> pd.Timestamp:
    """``value`` as a day (midnight), or a SpecError naming ``start_date``.

    Examples
    --------
    >>> start_date("2026-03-02 14:00")
    Timestamp('2026-03-02 00:00:00')
    """
    try:
        start = pd.Timestamp(value)
    except (ValueError, TypeError):
        start = pd.NaT
    if pd.isna(start):  # pd.Timestamp(None) gives NaT instead of raising
        raise SpecError(f"start_date is not a date: {value!r}")
    return start.normalize()
