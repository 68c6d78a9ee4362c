"""Shared inference pieces: intervals from (estimate, SE, df), Welch differences, OLS with
heteroskedasticity-robust covariance, the delta method for ratios."""

from causal.inference.basic import (
    Interval,
    interval,
    ols_robust,
    ratio_delta,
    welch_difference,
)

__all__ = ["Interval", "interval", "ols_robust", "ratio_delta", "welch_difference"]
