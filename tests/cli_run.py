"""Run the command line as a user would, in a fresh interpreter (shared by the end-to-end
tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python -m causal.cli ARGS`` in ``cwd``; never raises on a non-zero exit."""
    return subprocess.run(
        [sys.executable, "-m", "causal.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )
