"""Transaction log → per-customer RFM summary for the BG/NBD and Gamma–Gamma models.

The summary follows Fader, Hardie & Lee (2005, *Marketing Science*) and the ``lifetimes``
package: purchases are counted per calendar day (several transactions on one day are one
purchase occasion, their amounts summed), the first day is the trial purchase, and

- ``frequency`` x: repeat purchase days in the calibration period;
- ``recency`` t_x: time from the first purchase to the last repeat purchase (0 when x = 0);
- ``T``: time from the first purchase to the calibration end;
- ``monetary_value`` m̄: mean amount of the x repeat purchase days (0 when x = 0), the
  convention of Fader, Hardie & Lee (2005, *JMR*) — the trial purchase is left out;
- ``frequency_holdout``: purchase days in (calibration end, observation end], if asked.

Times are in weeks (days / 7) or days. ``lifetimes`` gives the same numbers with
``freq="D", freq_multiplier=7``; its ``freq="W"`` instead rounds dates to calendar weeks.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from causal.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

Period = Literal["D", "W"]
PERIOD_DAYS: dict[str, int] = {"D": 1, "W": 7}


@dataclass(frozen=True)
class CustomerSummary:
    """Per-customer calibration summary (arrays aligned with ``customer``, sorted by id).

    Build it with :func:`summarise_transactions` from a transaction log, or with
    :meth:`from_frame` from an existing RFM table. Arrays are read-only.
    """

    customer: np.ndarray
    frequency: np.ndarray  # float64 holding whole numbers, as the likelihoods use it
    recency: np.ndarray
    T: np.ndarray
    monetary_value: np.ndarray | None = None
    frequency_holdout: np.ndarray | None = None
    duration_holdout: float | None = None
    period: Period = "W"
    calibration_end: str | None = None
    observation_end: str | None = None
    n_transactions: int | None = None
    n_holdout_only: int = 0  # customers first seen after the calibration end, not summarised

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = value.copy()
                value.flags.writeable = False
                object.__setattr__(self, f.name, value)

    def __len__(self) -> int:
        return len(self.frequency)

    def subset(self, mask: np.ndarray) -> CustomerSummary:
        """The customers where ``mask`` is true (e.g. one arm of a pilot).

        Examples
        --------
        >>> s = CustomerSummary.from_frame(_example_frame())
        >>> len(s.subset(s.frequency > 0))
        2
        """
        mask = np.asarray(mask)
        values: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            values[f.name] = value[mask] if isinstance(value, np.ndarray) else value
        return CustomerSummary(**values)

    def to_frame(self) -> pd.DataFrame:
        """The summary as a DataFrame indexed by customer, with ``lifetimes``' column names."""
        import pandas as pd

        columns: dict[str, Any] = {
            "frequency": self.frequency,
            "recency": self.recency,
            "T": self.T,
        }
        if self.monetary_value is not None:
            columns["monetary_value"] = self.monetary_value
        if self.frequency_holdout is not None:
            columns["frequency_holdout"] = self.frequency_holdout
            columns["duration_holdout"] = np.full(len(self), self.duration_holdout)
        return pd.DataFrame(columns, index=pd.Index(self.customer, name="customer"))

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        frequency: str = "frequency",
        recency: str = "recency",
        T: str = "T",
        monetary_value: str | None = "monetary_value",
        period: Period = "W",
    ) -> CustomerSummary:
        """A summary from an RFM table (one row per customer; index = customer id).

        ``monetary_value`` may be None or absent from ``frame``. Raises DataError when a
        column is missing or the values cannot be a BG/NBD summary.

        Examples
        --------
        >>> s = CustomerSummary.from_frame(_example_frame())
        >>> s.frequency.tolist(), s.period
        ([0.0, 2.0, 1.0], 'W')
        """
        _check_period(period)
        names = [frequency, recency, T]
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise DataError(
                f"column {missing[0]!r} is not in the RFM table (columns: {list(frame.columns)}); "
                "pass its name as the matching keyword"
            )
        arrays = {}
        for name in names:
            arrays[name] = _numeric(frame[name], name)
        x, t_x, age = arrays[frequency], arrays[recency], arrays[T]
        if np.any(x < 0) or np.any(x != np.round(x)):
            raise DataError(
                f"column {frequency!r}: repeat purchase counts must be whole numbers ≥ 0; "
                "check that the column holds counts, not rates"
            )
        if np.any(t_x < 0) or np.any(t_x > age + 1e-9):
            raise DataError(
                f"columns {recency!r}, {T!r}: need 0 ≤ recency ≤ T for every customer; "
                "recency is the time of the last repeat purchase since the first"
            )
        if np.any((x == 0) & (t_x != 0)):
            raise DataError(
                f"column {recency!r}: customers with no repeat purchase must have recency 0"
            )
        m = None
        if monetary_value is not None and monetary_value in frame.columns:
            m = _numeric(frame[monetary_value], monetary_value)
            if np.any(m < 0):
                raise DataError(
                    f"column {monetary_value!r}: mean spends must be ≥ 0; remove refunds first"
                )
        return cls(
            customer=np.asarray(frame.index),
            frequency=x,
            recency=t_x,
            T=age,
            monetary_value=m,
            period=period,
        )


def summarise_transactions(
    log: pd.DataFrame,
    *,
    customer: str,
    date: str,
    amount: str | None = None,
    calibration_end: Any,
    observation_end: Any = None,
    period: Period = "W",
) -> CustomerSummary:
    """Summarise a transaction log into frequency, recency, T and mean repeat spend.

    Parameters
    ----------
    log
        One row per transaction; not modified. Rows need not be in date order.
    customer, date, amount
        Column names: customer id, transaction date (dates or ISO strings; the time of day
        is dropped) and the amount spent (optional; needed for the Gamma–Gamma model).
    calibration_end
        Last day of the calibration period (inclusive). T is measured up to it.
    observation_end
        Last day of the holdout period (inclusive). When given, ``frequency_holdout`` counts
        each calibration customer's purchase days after ``calibration_end``; customers first
        seen in the holdout are not summarised (counted in ``n_holdout_only``).
    period
        ``"W"`` (weeks of 7 days, as Fader, Hardie & Lee) or ``"D"`` (days).

    Raises
    ------
    DataError
        A column is missing; a customer id, date or amount is missing or malformed; an amount
        is negative; a transaction is dated after the period end; the period ends are out of
        order.

    Examples
    --------
    >>> import pandas as pd
    >>> log = pd.DataFrame({"id": [1, 1, 1, 2], "day": ["2024-01-01", "2024-01-08",
    ...                     "2024-01-08", "2024-01-15"], "spend": [10.0, 5.0, 7.0, 3.0]})
    >>> s = summarise_transactions(log, customer="id", date="day", amount="spend",
    ...                            calibration_end="2024-01-29")
    >>> s.frequency.tolist(), s.recency.tolist(), s.T.tolist(), s.monetary_value.tolist()
    ([1.0, 0.0], [1.0, 0.0], [4.0, 2.0], [12.0, 0.0])
    """
    import pandas as pd

    _check_period(period)
    missing = [c for c in (customer, date, amount) if c is not None and c not in log.columns]
    if missing:
        raise DataError(
            f"column {missing[0]!r} is not in the transaction log (columns: {list(log.columns)}); "
            "pass the name of the matching column"
        )
    if len(log) == 0:
        raise DataError("the transaction log is empty; there is nothing to summarise")
    ids = log[customer]
    if ids.isna().any():
        first = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise DataError(
            f"column {customer!r}: {int(ids.isna().sum())} transactions have no customer id "
            f"(first at row {first}); drop or fill them before summarising"
        )
    days = _parse_dates(log[date], date)
    cal_end = _parse_bound(calibration_end, "calibration_end")
    obs_end = None if observation_end is None else _parse_bound(observation_end, "observation_end")
    first_day = days.min()
    if cal_end < first_day:
        raise DataError(
            f"calibration_end {_iso(cal_end)} is before the first transaction in column "
            f"{date!r} ({_iso(first_day)}); set it on or after that date"
        )
    if obs_end is not None and obs_end < cal_end:
        raise DataError(
            f"observation_end {_iso(obs_end)} is before calibration_end {_iso(cal_end)}; "
            "the holdout period must follow the calibration period"
        )
    end = cal_end if obs_end is None else obs_end
    late = days > end
    if late.any():
        where = (
            "in the future of the calibration end"
            if obs_end is None
            else "after the observation end"
        )
        hint = (
            "pass observation_end to keep them as a holdout period, or drop them"
            if obs_end is None
            else "drop them or move observation_end"
        )
        raise DataError(
            f"column {date!r}: {int(late.sum())} transactions are {where} {_iso(end)} "
            f"(latest {_iso(days.max())}); {hint}"
        )
    frame = pd.DataFrame({"c": ids.to_numpy(), "d": days})
    if amount is not None:
        frame["m"] = _amounts(log[amount], amount)

    # One row per purchase day (amounts summed): the unit of FHL's counting process.
    per_day = frame.groupby(["c", "d"], sort=True).sum() if amount else frame.drop_duplicates()
    per_day = per_day.reset_index() if amount else per_day.sort_values(["c", "d"])
    c = per_day["c"].to_numpy()
    d = per_day["d"].to_numpy()
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    first = np.repeat(d[starts], np.diff(np.r_[starts, len(d)]))
    in_cal = d <= cal_end
    keep = first <= cal_end  # customers whose trial purchase is in the calibration period
    n_holdout_only = int(np.sum(d[starts] > cal_end))
    group = np.cumsum(np.r_[True, c[1:] != c[:-1]]) - 1
    n_groups = len(starts)
    cal = in_cal & keep
    n_days = np.bincount(group[cal], minlength=n_groups).astype(np.float64)
    first_g = d[starts]
    last = first_g.copy()  # recency 0 for customers without a repeat purchase
    np.maximum.at(last, group[cal], d[cal])
    scale = PERIOD_DAYS[period]
    sel = first_g <= cal_end
    x = (n_days - 1)[sel]
    recency = ((last - first_g) / scale)[sel]
    age = ((cal_end - first_g) / scale)[sel]
    monetary = None
    if amount is not None:
        m = per_day["m"].to_numpy(dtype=np.float64)
        repeat = cal & (d != first)
        total = np.bincount(group[repeat], weights=m[repeat], minlength=n_groups)[sel]
        monetary = np.divide(total, x, out=np.zeros_like(total), where=x > 0)
    holdout = duration = None
    if obs_end is not None:
        later = keep & ~in_cal
        holdout = np.bincount(group[later], minlength=n_groups)[sel].astype(np.float64)
        duration = (obs_end - cal_end) / scale
    return CustomerSummary(
        customer=c[starts][sel],
        frequency=x,
        recency=recency,
        T=age,
        monetary_value=monetary,
        frequency_holdout=holdout,
        duration_holdout=duration,
        period=period,
        calibration_end=_iso(cal_end),
        observation_end=None if obs_end is None else _iso(obs_end),
        n_transactions=len(log),
        n_holdout_only=n_holdout_only,
    )


def as_summary(data: CustomerSummary | pd.DataFrame) -> CustomerSummary:
    """``data`` itself, or an RFM DataFrame with ``lifetimes``' column names as a summary."""
    if isinstance(data, CustomerSummary):
        return data
    return CustomerSummary.from_frame(data)


def _check_period(period: str) -> None:
    if period not in PERIOD_DAYS:
        from causal.errors import SpecError

        raise SpecError(f"period {period!r} is not known; use one of {sorted(PERIOD_DAYS)}")


def _parse_dates(column: pd.Series, name: str) -> np.ndarray:
    """Calendar days (int64 days since 1970-01-01) of a date column, or DataError."""
    import pandas as pd

    if pd.api.types.is_integer_dtype(column) or pd.api.types.is_float_dtype(column):
        # Integers such as 19970101 would be read as nanoseconds since 1970.
        raise DataError(
            f"column {name!r} holds numbers (e.g. {column.iloc[0]}), not dates; convert it "
            "first, e.g. pd.to_datetime(log[col].astype(str), format='%Y%m%d')"
        )
    if column.isna().any():
        first = int(np.flatnonzero(column.isna().to_numpy())[0])
        raise DataError(
            f"column {name!r}: {int(column.isna().sum())} transactions have no date "
            f"(first at row {first}); drop or fill them before summarising"
        )
    parsed = pd.to_datetime(column, errors="coerce", format="mixed")
    if parsed.isna().any():
        first = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise DataError(
            f"column {name!r}: {int(parsed.isna().sum())} dates cannot be read (first: "
            f"{column.iloc[first]!r} at row {first}); use ISO dates such as 1997-01-31"
        )
    if parsed.dt.tz is not None:
        parsed = parsed.dt.tz_localize(None)  # local calendar days
    return parsed.dt.normalize().to_numpy().astype("datetime64[D]").astype(np.int64)


def _parse_bound(value: Any, name: str) -> int:
    import pandas as pd

    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        stamp = pd.NaT
    if pd.isna(stamp):
        raise DataError(f"{name} {value!r} is not a date; give an ISO date such as 1997-09-30")
    return int(np.datetime64(stamp.date(), "D").astype(np.int64))


def _amounts(column: pd.Series, name: str) -> np.ndarray:
    import pandas as pd

    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"column {name!r}: {int(bad.sum())} amounts are missing or not numbers (first: "
            f"{column.iloc[first]!r} at row {first}); fix or drop them before summarising"
        )
    if np.any(values < 0):
        first = int(np.flatnonzero(values < 0)[0])
        raise DataError(
            f"column {name!r}: {int(np.sum(values < 0))} amounts are negative (first: "
            f"{values[first]} at row {first}); net refunds against their purchases or drop them"
        )
    return values


def _numeric(column: pd.Series, name: str) -> np.ndarray:
    import pandas as pd

    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise DataError(f"column {name!r}: values must be finite numbers; fix or drop the rows")
    return values


def _iso(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def _example_frame() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        {"frequency": [0, 2, 1], "recency": [0.0, 5.0, 2.0], "T": [6.0, 8.0, 9.0]},
        index=pd.Index(["a", "b", "c"], name="customer"),
    )
