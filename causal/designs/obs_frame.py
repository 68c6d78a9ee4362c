"""The observational design's analysis table: validated columns and numeric design matrices.

Confounders and effect modifiers may be numeric or categorical (text, booleans); categorical
columns become 0/1 indicators, one per level except the first in sorted order, named
``column[level]`` so tables and messages stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal.data.dataset import validate_table
from causal.errors import DataError, DesignError


@dataclass(frozen=True)
class ObsFrame:
    """The validated unit-level table of an observational spec, sorted by unit id."""

    table: pd.DataFrame
    unit: str
    treatment: str
    outcomes: tuple[str, ...]
    fingerprint: str

    @property
    def d(self) -> np.ndarray:
        return self.table[self.treatment].to_numpy(dtype=np.int64)

    @property
    def n_treated(self) -> int:
        return int(self.d.sum())

    def outcome(self, column: str) -> np.ndarray:
        return self.table[column].to_numpy(dtype=float)

    def matrix(self, columns: tuple[str, ...] | list[str]) -> tuple[np.ndarray, list[str]]:
        """The numeric design matrix of ``columns`` (categoricals as indicators) and its names.

        Examples
        --------
        >>> t = pd.DataFrame({"id": [1, 2, 3], "d": [0, 1, 1], "y": [1.0, 2, 3],
        ...                   "seg": ["a", "b", "c"], "x": [0.5, 1.5, 2.5]})
        >>> frame = build_frame(t, unit="id", treatment="d", outcomes={"y": "continuous"},
        ...                     columns=("seg", "x"))
        >>> frame.matrix(["seg", "x"])[1]
        ['seg[b]', 'seg[c]', 'x']
        """
        blocks, names = [], []
        for column in columns:
            values = self.table[column]
            if is_numeric(values):
                blocks.append(values.to_numpy(dtype=float)[:, None])
                names.append(column)
                continue
            levels = sorted(values.astype(str).unique())
            text = values.astype(str).to_numpy()
            for level in levels[1:]:
                blocks.append((text == level).astype(float)[:, None])
                names.append(f"{column}[{level}]")
        if not blocks:
            return np.empty((len(self.table), 0)), []
        return np.hstack(blocks), names


def build_frame(
    table: pd.DataFrame,
    *,
    unit: str,
    treatment: str,
    outcomes: dict[str, str],
    columns: tuple[str, ...],
) -> ObsFrame:
    """Validate the analysis table for the observational design.

    Raises :class:`DataError` for missing columns, duplicate units, a treatment that is not
    0/1 or missing values in the adjustment columns (which would silently change who is
    compared), and :class:`DesignError` when everyone (or no one) was treated.
    """
    numeric = tuple(c for c in columns if c in table and is_numeric(table[c]))
    other = tuple(c for c in columns if c not in numeric)
    dataset = validate_table(
        table,
        unit=unit,
        treatment=treatment,
        outcomes=outcomes,
        covariates=numeric,
        segments=other,
    )
    for column in columns:
        missing = dataset.missing.get(column, 0)
        if missing:
            raise DataError(
                f"column {column!r}: {missing} missing values; adjustment needs every unit's "
                "value — impute or filter them in data.query (and say so in the report)"
            )
    for column in outcomes:
        missing = dataset.missing.get(column, 0)
        if missing:
            raise DataError(
                f"outcome {column!r}: {missing} missing values; filter or fill them in data.query"
            )
    n_treated = dataset.n_treated
    if n_treated in (0, dataset.n_units):
        arm = "treated" if n_treated else "untreated"
        raise DesignError(
            f"treatment {treatment!r}: all {dataset.n_units} units are {arm} after data.query; "
            "an observational comparison needs both buyers and non-buyers"
        )
    return ObsFrame(
        table=dataset.table,
        unit=unit,
        treatment=treatment,
        outcomes=tuple(outcomes),
        fingerprint=dataset.fingerprint,
    )


def is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
