"""Design checks: each returns a :class:`CheckResult` with status pass, warn, fail or n/a.

Checks never crash a report: :func:`guarded` turns an unexpected exception into ``n/a`` with
the reason, so one broken check cannot hide the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["pass", "warn", "fail", "n/a"]
_SEVERITY: dict[str, int] = {"n/a": 0, "pass": 1, "warn": 2, "fail": 3}


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check.

    Examples
    --------
    >>> CheckResult("sample_ratio", "pass", "50.1% treated vs 50% planned (p = 0.62)").status
    'pass'
    """

    name: str
    status: Status
    detail: str
    table: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.status not in _SEVERITY:
            raise ValueError(f"status must be one of {list(_SEVERITY)}, got {self.status!r}")
        object.__setattr__(self, "table", tuple(dict(row) for row in self.table))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "table": [dict(r) for r in self.table],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        return cls(data["name"], data["status"], data["detail"], tuple(data.get("table", ())))


def worst(checks: Iterable[CheckResult]) -> Status:
    """The most severe status among ``checks`` (``n/a`` when there are none).

    Examples
    --------
    >>> worst([CheckResult("a", "pass", ""), CheckResult("b", "warn", "")])
    'warn'
    """
    statuses = [c.status for c in checks]
    return max(statuses, key=_SEVERITY.__getitem__) if statuses else "n/a"


def guarded(name: str, check: Callable[..., CheckResult], *args: Any, **kwargs: Any) -> CheckResult:
    """Run a check; an exception becomes ``n/a`` with its reason instead of a crash."""
    try:
        return check(*args, **kwargs)
    except Exception as exc:
        return CheckResult(name, "n/a", f"could not run: {type(exc).__name__}: {exc}")
