"""Calibration of the confidence sequence over thousands of simulated daily-monitored pilots.

A pilot enrols 200 users per arm per day for 30 days (planned size 12,000) and is looked at
every day. A/A: the CS must exclude 0 at any look in at most 5% of pilots, while the fixed 95%
interval read at the same looks does so in 20–35% (the peeking problem). Power: with an effect
sized for 90% fixed-horizon power at the planned size, the CS must exclude 0 by the last look
in at least 60% of pilots. Marked ``calibration`` (and ``slow``); a few seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from causal.designs.sequential import decision, difference_at_look

PILOTS, DAYS, PER_ARM_DAY = 2_000, 30, 200
PLANNED = DAYS * 2 * PER_ARM_DAY

pytestmark = pytest.mark.calibration  # a few seconds: in the default run


def simulate_looks(outcome: str, effect: float, *, seed: int) -> dict[str, np.ndarray]:
    """Cumulative arm sums, shape (pilots, looks), of ``PILOTS`` simulated pilots.

    Each day draws the new users' outcomes for every pilot at once (2,000 × 2 × 200 values) and
    adds their sums and sums of squares: the same statistics track_stats computes from events.
    """
    rng = np.random.default_rng(seed)
    sums = {k: np.zeros((PILOTS, DAYS)) for k in ("sum_y_0", "sum_y_1", "sum_y2_0", "sum_y2_1")}
    running = np.zeros((4, PILOTS))
    for day in range(DAYS):
        y = draw(rng, outcome, (PILOTS, 2, PER_ARM_DAY))
        y[:, 1, :] += effect
        running += np.concatenate([y.sum(axis=2).T, (y**2).sum(axis=2).T])
        for i, key in enumerate(sums):
            sums[key][:, day] = running[i]
    n = np.broadcast_to(PER_ARM_DAY * np.arange(1, DAYS + 1), (PILOTS, DAYS))
    return {"n_0": n, "n_1": n, **sums}


def draw(rng: np.random.Generator, outcome: str, size: tuple[int, ...]) -> np.ndarray:
    if outcome == "normal":
        return rng.normal(10.0, 3.0, size)
    # skewed revenue: 70% of users buy nothing, buyers spend a log-normal amount (skewness ~ 6)
    buys = rng.random(size) < 0.3
    return np.where(buys, rng.lognormal(3.0, 1.0, size), 0.0)


def outcome_sd(outcome: str) -> float:
    if outcome == "normal":
        return 3.0
    m1 = 0.3 * math.exp(3.0 + 0.5)
    m2 = 0.3 * math.exp(6.0 + 2.0)
    return math.sqrt(m2 - m1**2)


def any_look_rates(looks) -> tuple[float, float]:
    cs_hit = ((looks.cs_low > 0) | (looks.cs_high < 0)).any(axis=1).mean()
    ci_hit = ((looks.conf_low > 0) | (looks.conf_high < 0)).any(axis=1).mean()
    return float(cs_hit), float(ci_hit)


@pytest.mark.parametrize("outcome", ["normal", "skewed_revenue"])
def test_aa_false_positives_cs_vs_peeking_at_a_fixed_ci(outcome):
    looks = difference_at_look(simulate_looks(outcome, 0.0, seed=11), planned_n=PLANNED)
    cs_rate, ci_rate = any_look_rates(looks)
    last_ci = float(((looks.conf_low[:, -1] > 0) | (looks.conf_high[:, -1] < 0)).mean())
    print(
        f"\nA/A {outcome}, {PILOTS} pilots × {DAYS} daily looks: zero excluded at any look by "
        f"the CS {cs_rate:.1%} | by the fixed 95% CI {ci_rate:.1%} "
        f"(fixed CI at the last look only: {last_ci:.1%})"
    )
    assert cs_rate <= 0.05
    assert 0.20 <= ci_rate <= 0.35
    assert 0.03 <= last_ci <= 0.07  # one planned look: the fixed CI is right


@pytest.mark.parametrize("outcome", ["normal", "skewed_revenue"])
def test_power_at_an_effect_with_90pct_fixed_horizon_power(outcome):
    se_final = outcome_sd(outcome) * math.sqrt(2 / (DAYS * PER_ARM_DAY))
    effect = (stats.norm.ppf(0.975) + stats.norm.ppf(0.90)) * se_final
    looks = difference_at_look(simulate_looks(outcome, effect, seed=12), planned_n=PLANNED)
    excluded = looks.cs_low > 0
    stopped = excluded.any(axis=1)
    first = np.argmax(excluded, axis=1)[stopped] + 1  # look number 1..30
    fixed_power = float((looks.conf_low[:, -1] > 0).mean())
    calls = decision(looks)
    print(
        f"\npower {outcome} (effect {effect:.3f}, 90% fixed-horizon power): the CS excludes 0 "
        f"by look {DAYS} in {stopped.mean():.1%} of pilots (fixed CI at the last look "
        f"{fixed_power:.1%}); median first exclusion at look {np.median(first):.0f} of {DAYS} "
        f"(quartiles {np.percentile(first, 25):.0f}–{np.percentile(first, 75):.0f}); "
        f"wrong-sign exclusions {(looks.cs_high < 0).any(axis=1).mean():.2%}"
    )
    assert stopped.mean() >= 0.60
    assert 0.85 <= fixed_power <= 0.95
    assert 12 <= np.median(first) <= 24
    # every pilot that stops gets the positive call at that look
    assert (calls[stopped, first - 1] == "positive effect, can stop").all()
