"""Report speed: the A/B demo from spec to HTML, and the index rebuilt over 200 reports.

Run: .venv/bin/python bench/bench_report.py

(1) ``causal run experiments/extended_warranty_pilot.yaml`` in a fresh process (import, data,
estimators, papermill, nbconvert), best of 3; goal under 10 s on 2 cores. (2)
``write_index`` over 200 report folders (copies of that run's results.json under different
names), best of 3; goal under 2 s. No peer: nothing else renders our reports.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from causal.report_index import write_index

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "experiments" / "extended_warranty_pilot.yaml"


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)

        def render() -> None:
            subprocess.run(
                [sys.executable, "-m", "causal.cli", "run", str(DEMO), "--out", str(out)],
                check=True,
                capture_output=True,
                cwd=ROOT,
            )

        demo = best_of(render)
        results = out / DEMO.stem / "results.json"
        many = out / "many"
        for i in range(200):
            (many / f"experiment_{i:03d}").mkdir(parents=True)
            shutil.copy(results, many / f"experiment_{i:03d}" / "results.json")
        index = best_of(lambda: write_index(many))
    print(f"A/B demo, spec to HTML (fresh process): {demo:6.2f} s   (goal < 10 s)")
    print(f"index over 200 reports:                  {index:6.2f} s   (goal < 2 s)")


if __name__ == "__main__":
    main()
