"""Names of the designs and of their estimators, importable without numerical libraries.

The spec validates against these names before any heavy module is imported; each design
module registers its implementations under exactly these names (a test checks they agree).
"""

from __future__ import annotations

AVAILABLE_DESIGNS: tuple[str, ...] = ("ab_test", "synthetic_control", "did")
PLANNED_DESIGNS: tuple[str, ...] = ("observational", "uplift")

ESTIMATORS: dict[str, tuple[str, ...]] = {
    "ab_test": ("difference_in_means", "cuped", "lin", "relative_lift"),
    "synthetic_control": ("synthetic_did", "synthetic_control", "did_sc_baseline"),
    "did": ("callaway_santanna", "event_study", "twfe", "did_2x2"),
}
DEFAULT_ESTIMATORS: dict[str, tuple[str, ...]] = {
    "ab_test": ("difference_in_means", "cuped", "lin", "relative_lift"),
    "synthetic_control": ("synthetic_did", "synthetic_control", "did_sc_baseline"),
    "did": ("callaway_santanna", "event_study", "twfe", "did_2x2"),
}
NEEDS_COVARIATES: frozenset[str] = frozenset({"cuped", "lin"})
RELATIVE_ESTIMATORS: frozenset[str] = frozenset({"relative_lift"})
