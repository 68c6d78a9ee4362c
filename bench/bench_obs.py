"""Observational design: our estimators against dowhy and econml on the same data, and the
two example reports end to end.

Run: .venv/bin/python bench/bench_obs.py [--customers 20000] [--skip-reports]

Data: ``warranty_buyers`` (the spec's simulator and query) at ``--customers`` customers;
adjustment set log spend, log tenure, segment, spend and orders (one-hot segment).

- Regression: ours (``regression_adjustment``, interacted=False, HC SE) vs dowhy's
  ``backdoor.linear_regression`` (``CausalModel`` + ``identify_effect`` + ``estimate_effect``).
- Doubly robust ATT: our cross-fitted AIPW vs econml's ``DRLearner`` with the same learners
  (HistGradientBoosting outcome, logistic propensity), 5 folds; econml's ATT from its
  population summary over the treated.
- Reports: ``causal run`` of both observational specs in a fresh process, spec to HTML.

Each estimator timing is the best of 3 in this process; the ratio is peer time / our time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("log_pre_revenue_12m", "log_tenure", "segment", "pre_revenue_12m", "pre_orders_12m")


def best_of(task, repeat: int = 3) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = task()
        times.append(time.perf_counter() - start)
    return min(times), value


def load(customers: int):
    from causal.data.dataset import query_table
    from causal.designs.obs_frame import build_frame
    from causal.spec import load_spec

    spec = load_spec(ROOT / "experiments" / "warranty_buyers_observational.yaml")
    raw = spec.model_dump()
    for source in raw["data"]["sources"].values():
        source["params"] = {"n_customers": customers}
    spec = type(spec).model_validate(raw)
    table = query_table(spec)
    frame = build_frame(
        table,
        unit="customer_id",
        treatment="treated",
        outcomes={"revenue_12m": "continuous"},
        columns=COLUMNS,
    )
    return spec, frame


def bench_regression(frame) -> list[str]:
    from causal.designs.obs_dowhy import linear_regression_estimate
    from causal.designs.obs_estimators import regression_adjustment

    X, names = frame.matrix(COLUMNS)
    y, d = frame.outcome("revenue_12m"), frame.d
    table = frame.table.assign(**{n: X[:, j] for j, n in enumerate(names)})
    safe = [n.replace("[", "_").replace("]", "") for n in names]
    table = table.rename(columns=dict(zip(names, safe, strict=True)))
    ours_t, ours = best_of(
        lambda: regression_adjustment(y, d, X, names=names, estimand="ATE", interacted=False)
    )
    peer_t, peer = best_of(
        lambda: linear_regression_estimate(
            table, treatment="treated", outcome="revenue_12m", adjustment_set=tuple(safe)
        )
    )
    gap = abs(ours.estimate - peer)
    return [
        f"| regression vs dowhy backdoor.linear_regression | {len(y):,} | {ours_t:.3f} | "
        f"{peer_t:.3f} | {peer_t / ours_t:.0f}× | {gap:.1e} |"
    ]


def bench_doubly_robust(frame, seed: int) -> list[str]:
    from causal.designs.learners import outcome_learner
    from causal.designs.obs_estimators import aipw

    X, names = frame.matrix(COLUMNS)
    y, d = frame.outcome("revenue_12m"), frame.d

    def ours():
        return aipw(
            y,
            d,
            X,
            names=names,
            estimand="ATT",
            outcome_learner="gradient_boosting",
            propensity_learner="logistic",
            folds=5,
            seed=seed,
        )

    def peer():
        from econml.dr import DRLearner
        from sklearn.linear_model import LogisticRegression

        est = DRLearner(
            model_regression=outcome_learner("gradient_boosting", seed=seed),
            model_propensity=LogisticRegression(C=1e6, max_iter=2000),
            cv=5,
            random_state=seed,
        )
        est.fit(y, d, X=X)
        return float(est.effect_inference(X[d == 1]).population_summary().mean_point)

    ours_t, mine = best_of(ours)
    peer_t, theirs = best_of(peer)
    return [
        f"| AIPW ATT vs econml DRLearner (ATT of CATEs) | {len(y):,} | {ours_t:.2f} | "
        f"{peer_t:.2f} | {peer_t / ours_t:.1f}× | {abs(mine.estimate - theirs):.2g} |"
    ]


def bench_reports() -> list[str]:
    rows = []
    for name in ("warranty_buyers_observational", "lalonde_nsw_cps"):
        spec = ROOT / "experiments" / f"{name}.yaml"
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run(
                [str(Path(sys.executable).parent / "causal"), "run", str(spec), "--out", out],
                check=True,
                capture_output=True,
            )
            rows.append(f"| {name}, spec to HTML | {time.perf_counter() - start:.1f} | < 60 |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--skip-reports", action="store_true")
    args = parser.parse_args()
    spec, frame = load(args.customers)
    print("| task | units | ours (s) | peer (s) | peer / ours | |difference| |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in bench_regression(frame) + bench_doubly_robust(frame, spec.seed):
        print(row, flush=True)
    if not args.skip_reports:
        print("\n| report | seconds | goal |\n| --- | ---: | ---: |")
        for row in bench_reports():
            print(row, flush=True)


if __name__ == "__main__":
    main()
