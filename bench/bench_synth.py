"""Synthetic control with nested v (causal.designs.synth_adh) against pysyncon, in one process.

Run: .venv/bin/python bench/bench_synth.py [--no-pysyncon-placebo]

(1) Placebo-in-space inference on California's Proposition 99 (39 nested fits; predictors: mean
sales 1980–1988 and sales in 1975, 1980, 1988): ours against ``pysyncon.utils.PlaceboTest`` with
``Synth`` at its defaults (Nelder–Mead from equal v; one worker process per core). pysyncon
takes about half an hour here, so it runs once; ours is best of 3.
(2) A simulated factor-model panel, 500 donors × 60 periods (40 pre-periods; predictors: the
outcome means over five 8-period blocks). One pysyncon inner solve (SLSQP over 500 weights)
takes seconds, so its nested fit and placebo run are extrapolated: inner solves needed (its
Nelder–Mead, counted on the same objective) × measured seconds per solve, / cores for placebos.
BLAS runs single-threaded for both (set below, before numpy loads): the matrices are tiny, and
threaded BLAS in pysyncon's worker processes oversubscribes the cores.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from pysyncon import Dataprep, Synth
from pysyncon.base import VanillaOptimMixin
from pysyncon.utils import PlaceboTest
from scipy.optimize import minimize

from causal.designs.synth_adh import (
    _standardise,
    fit_adh,
    placebo_in_space,
    solve_w,
)

PROP99 = Path(__file__).resolve().parent.parent / "causal/data/datasets/california_prop99.csv"
CORES = os.cpu_count() or 1


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def row(task: str, ours: float, peer: float, note: str = "") -> None:
    # ratio = causal / peer as in bench/README.md (below 1: we are faster); also the speed-up
    print(f"{task:<46}{ours:>10.3f}{peer:>12.1f}{ours / peer:>10.1e}{peer / ours:>8.0f}×  {note}")


def prop99(run_pysyncon: bool) -> None:
    wide = pd.read_csv(PROP99)
    states = [c for c in wide.columns if c != "Year"]
    years = wide["Year"].to_numpy()
    Y = wide[states].to_numpy().T
    X = np.vstack(
        [Y[:, (years >= 1980) & (years <= 1988)].mean(axis=1)]
        + [Y[:, years == year][:, 0] for year in (1975, 1980, 1988)]
    )
    ca, T0 = states.index("California"), 19
    t_ours, ours = best_of(lambda: placebo_in_space(Y, X, ca, T0))
    print(f"(1) Prop 99: California rank {ours.rank}/39, p = {ours.p_value:.4f} (ours)")
    if not run_pysyncon:
        print(f"{'placebo-in-space, 39 nested fits (ours only)':<46}{t_ours:>10.3f}")
        return
    dataprep = Dataprep(
        foo=wide.melt(id_vars="Year", var_name="state", value_name="cigsale"),
        predictors=["cigsale"],
        predictors_op="mean",
        time_predictors_prior=range(1980, 1989),
        special_predictors=[("cigsale", [year], "mean") for year in (1975, 1980, 1988)],
        dependent="cigsale",
        unit_variable="state",
        time_variable="Year",
        treatment_identifier="California",
        controls_identifier=[s for s in states if s != "California"],
        time_optimize_ssr=range(1970, 1989),
    )
    synth = Synth()
    start = time.perf_counter()
    placebo = PlaceboTest()
    placebo.fit(dataprep, synth, verbose=False)
    t_peer = time.perf_counter() - start
    theirs = pd.concat([placebo.gaps, placebo.treated_gap], axis=1)[states].to_numpy().T
    pre = np.mean(theirs[:, :T0] ** 2, axis=1)
    ratio = np.sqrt(np.mean(theirs[:, T0:] ** 2, axis=1) / pre)
    rank = int(np.sum(ratio >= ratio[ca]))
    print(
        f"    pysyncon: California rank {rank}/39 (its pvalue(1989) = {placebo.pvalue(1989):.4f})"
    )
    print(f"{'task':<46}{'causal s':>10}{'pysyncon s':>12}{'ratio':>10}{'speed-up':>9}")
    row("placebo-in-space, 39 nested fits", t_ours, t_peer, f"pysyncon on {CORES} processes")
    ours_pre = ours.pre_rmspe**2
    lower = int(np.sum(ours_pre <= pre * (1 + 1e-6)))
    print(f"    outer loss (pre-period MSPE) ours <= pysyncon's for {lower} of 39 units")
    # The last fit PlaceboTest runs, in this process, is California's: synth holds it.
    donors = [j for j in range(len(states)) if j != ca]
    X1s, X0s = _standardise(X[:, ca], X[:, donors])
    w_ours = fit_adh(X[:, ca], X[:, donors], Y[ca, :T0], Y[donors, :T0].T).weights
    print(
        f"    California (inside its donors' hull, weights not unique): outer loss ours "
        f"{ours_pre[ca]:.4f}, pysyncon {synth.loss_V:.4f}; max |w diff| "
        f"{np.abs(w_ours - synth.W).max():.3f}; at pysyncon's v our exact inner solution is "
        f"{np.abs(solve_w(X1s, X0s, synth.V) - synth.W).max():.3f} from its weights"
    )


def factor_panel(J: int = 500, T: int = 60, T0: int = 40, seed: int = 0):
    """Three random-walk factors, unit loadings, noise; the treated unit (row 0) sits 10 above."""
    rng = np.random.default_rng(seed)
    loadings = rng.normal(size=(J + 1, 3))
    factors = 0.5 * rng.normal(size=(3, T)).cumsum(axis=1)
    Y = 100 + 3 * loadings @ factors + np.linspace(0, 10, T) + rng.normal(size=(J + 1, T))
    Y[0] += 10.0  # outside the donors' hull: unique weights, as for an extreme treated unit
    X = np.array([Y[:, b].mean(axis=1) for b in np.array_split(np.arange(T0), 5)])
    return Y, X


def simulated() -> None:
    Y, X = factor_panel()
    T0 = 40
    X1, X0, Z1, Z0 = X[:, 0], X[:, 1:], Y[0, :T0], Y[1:, :T0].T
    k, J = X0.shape
    X1s, X0s = _standardise(X1, X0)
    t_fit, fit = best_of(lambda: fit_adh(X1, X0, Z1, Z0))
    t_plac, plac = best_of(lambda: placebo_in_space(Y, X, 0, T0), repeat=1)

    # pysyncon's cost per outer evaluation: one SLSQP inner solve, measured at three v.
    rng = np.random.default_rng(1)
    vs = [np.full(k, 1 / k), *rng.dirichlet(np.ones(k), size=2)]
    solve_times, gaps, inner_losses, kkt = [], [], [], []
    for v in vs:
        start = time.perf_counter()
        W, _ = VanillaOptimMixin.w_optimize(np.diag(v), X0s, X1s)
        solve_times.append(time.perf_counter() - start)
        w = solve_w(X1s, X0s, v)
        gaps.append(np.abs(W - w).max())
        inner_losses.append((v @ (X1s - X0s @ w) ** 2, v @ (X1s - X0s @ W) ** 2))
        # Optimality certificate for ours (KKT on the simplex): the gradient is smallest, and
        # equal, on the donors with positive weight.
        grad = X0s.T @ (v * (X0s @ w - X1s))
        kkt.append(float(np.ptp(grad[w > 0]) + max(0.0, grad[w > 0].max() - grad.min())))
    t_solve = float(np.mean(solve_times))
    t_ours_solve, _ = best_of(lambda: [solve_w(X1s, X0s, v) for v in vs])

    # How many inner solves pysyncon's outer loop makes: its Nelder–Mead (start 1/k, its
    # options) on the same objective, with our exact inner solve standing in for SLSQP.
    evaluations = [0]

    def outer(x: np.ndarray) -> float:
        evaluations[0] += 1
        w = solve_w(X1s, X0s, np.abs(x) / np.sum(np.abs(x)))
        return float(np.mean((Z1 - Z0 @ w) ** 2))

    nm = minimize(outer, np.full(k, 1 / k), method="Nelder-Mead", options={"maxiter": 1000})
    n_eval = evaluations[0] + 1  # pysyncon solves once more at the optimum
    t_peer_fit = n_eval * t_solve
    print(
        f"\n(2) simulated panel: {J} donors × {Y.shape[1]} periods, {T0} pre-periods, {k} "
        "predictors; pysyncon times extrapolated (see docstring)"
    )
    print(f"{'task':<46}{'causal s':>10}{'pysyncon s':>12}{'ratio':>10}{'speed-up':>9}")
    row("inner solve, 3 fixed v (SLSQP vs Wolfe)", t_ours_solve, t_solve * 3, "measured")
    row(
        "nested fit of the treated unit",
        t_fit,
        t_peer_fit,
        f"{n_eval} inner solves × {t_solve:.1f} s",
    )
    row(
        f"placebo-in-space, {J + 1} nested fits",
        t_plac,
        (J + 1) * t_peer_fit / CORES,
        f"{J + 1} × fit / {CORES} processes",
    )
    print(
        f"    max |w diff| at fixed v, ours vs pysyncon's SLSQP: "
        f"{', '.join(f'{g:.3f}' for g in gaps)}"
    )
    print(
        "    inner loss at those v, ours / pysyncon: "
        + ", ".join(f"{a:.6f} / {b:.6f}" for a, b in inner_losses)
        + f"; our KKT violation <= {max(kkt):.1e}"
    )
    print(
        f"    nested outer loss: ours {fit.pre_mspe:.4f}, Nelder–Mead from equal v "
        f"{nm.fun:.4f}; treated unit (no effect simulated) ranks {plac.rank}/{J + 1}"
    )


def main(run_pysyncon_placebo: bool) -> None:
    print(f"BLAS threads: {os.environ['OPENBLAS_NUM_THREADS']}; cores: {CORES}; ours: 1 process")
    prop99(run_pysyncon_placebo)
    simulated()


if __name__ == "__main__":
    main("--no-pysyncon-placebo" not in sys.argv[1:])
