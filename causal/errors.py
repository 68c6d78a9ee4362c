"""Domain errors.

Every error the toolkit raises on bad input is a :class:`CausalError`: its message names the
file, field or column, says what was expected and what to do, in one or two lines. The CLI
prints the message without a traceback and exits with :data:`CausalError.exit_code`.
"""

from __future__ import annotations


class CausalError(Exception):
    """Base class for errors caused by the user's spec, data or environment."""

    exit_code = 2


class SpecError(CausalError):
    """The experiment spec is missing, not valid YAML, or not a valid spec."""


class DataError(CausalError):
    """A data source or the analysis table is missing, malformed or fails validation."""


class DesignError(CausalError):
    """The design cannot be estimated on this data (e.g. an arm is empty)."""


class ReportError(CausalError):
    """The report could not be rendered; the previous report, if any, is kept."""
