"""Uplift design at scale: the default learner on 1,000,000 customers × 20 features.

Run: .venv/bin/python bench/bench_uplift.py [--customers 1000000] [--features 20]

Each configuration runs in a fresh process so its peak memory (``ru_maxrss``) is its own:

- ours: the spec's default learner through our adapter (``fit_uplift("dr_learner")``: econml's
  ``DRLearner`` with the histogram-boosted base learner as regression and final model, the
  randomisation's known propensity, 3 folds), then scoring every customer;
- econml defaults: ``DRLearner()`` as econml ships it (its own default nuisance models:
  ``LogisticRegressionCV`` propensity, ``WeightedLassoCVWrapper`` regression, linear final
  model), fitted and scored on the same data;
- the Qini coefficient (curve and area) of the 1,000,000 scores, ours and scikit-uplift's.

Data: a randomised pilot (treated share 0.5), 20 standard normal features of which 4 drive the
baseline and 3 the uplift, binary outcome. Same seed for every configuration.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_data(n: int, p: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(np.float64)
    d = (rng.random(n) < 0.5).astype(np.int64)
    base = 1 / (1 + np.exp(-(-1.5 + 0.6 * X[:, 0] - 0.4 * X[:, 1] + 0.3 * X[:, 2] * X[:, 3])))
    tau = 0.15 * (X[:, 4] > 0) - 0.08 * (X[:, 5] > 0.5) + 0.05 * np.tanh(X[:, 6])
    y = (rng.random(n) < np.clip(base + d * tau, 0, 1)).astype(np.float64)
    return X, d, y, tau


def child(task: str, n: int, p: int) -> dict:
    import numpy as np

    X, d, y, tau = make_data(n, p)
    start = time.perf_counter()
    if task == "ours":
        from causal.designs.uplift_learners import fit_uplift

        fitted = fit_uplift(
            "dr_learner", y, d, X, base_learner="gradient_boosting", treated_share=0.5, seed=0
        )
        score = fitted.predict(X)
    elif task == "econml_defaults":
        import warnings

        from econml.dr import DRLearner

        warnings.filterwarnings("ignore")
        model = DRLearner(random_state=0).fit(y, d, X=X)
        score = np.asarray(model.effect(X)).reshape(-1)
    else:
        raise SystemExit(f"unknown task {task}")
    seconds = time.perf_counter() - start
    from causal.designs.uplift_metrics import qini_coefficient

    return {
        "task": task,
        "seconds": seconds,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "corr_true_uplift": float(np.corrcoef(score, tau)[0, 1]),
        "qini": qini_coefficient(y, score, d),
    }


def qini_timing(n: int) -> dict:
    import numpy as np

    from causal.designs.uplift_metrics import qini_coefficient

    _, d, y, tau = make_data(n, 8)
    score = tau + np.random.default_rng(1).normal(scale=0.05, size=n)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        ours = qini_coefficient(y, score, d)
        times.append(time.perf_counter() - start)
    row = {"ours_seconds": min(times), "ours": ours}
    try:
        import warnings

        from sklift.metrics import qini_auc_score

        warnings.filterwarnings("ignore")
        times = []
        for _ in range(3):
            start = time.perf_counter()
            theirs = qini_auc_score(y, score, d)
            times.append(time.perf_counter() - start)
        row |= {"sklift_seconds": min(times), "sklift": theirs}
    except ImportError:
        row["sklift_seconds"] = None
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument(
        "--peer-customers",
        type=int,
        default=20_000,
        help="econml's defaults select among several models by cross-validation: 125 s at "
        "20,000 customers here, so they run at this size only (with ours beside them)",
    )
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.customers, args.features)))
        return
    n, p = args.customers, args.features
    print(f"{p} features, randomised, binary outcome", flush=True)
    small = args.peer_customers
    for task, size in (("ours", small), ("econml_defaults", small), ("ours", n)):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", task, "--customers", str(size),
             "--features", str(p)],
            capture_output=True, text=True, cwd=ROOT, check=True,
        )  # fmt: skip
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"{row['task']:>16} at {size:>9,}: fit + score {row['seconds']:7.1f} s, peak memory "
            f"{row['peak_rss_gib']:.2f} GiB, corr(score, true uplift) "
            f"{row['corr_true_uplift']:.3f}, Qini {row['qini']:.4f}",
            flush=True,
        )
    q = qini_timing(n)
    line = f"Qini coefficient on {n:,} scores: ours {q['ours_seconds']:.3f} s"
    if q.get("sklift_seconds"):
        ratio = q["sklift_seconds"] / q["ours_seconds"]
        line += (
            f", scikit-uplift {q['sklift_seconds']:.3f} s ({ratio:.1f}× ours), "
            f"difference {abs(q['ours'] - q['sklift']):.1e}"
        )
    print(line)


if __name__ == "__main__":
    main()
