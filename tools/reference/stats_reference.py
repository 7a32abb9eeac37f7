"""Reference values for trialops' statistics, computed with independent implementations.

Run offline (needs scipy and lifelines from PyPI):
    python3 -m venv /tmp/statsref && /tmp/statsref/bin/pip install scipy lifelines
    /tmp/statsref/bin/python tools/reference/stats_reference.py > crates/domain/tests/fixtures/stats_reference.json

crates/domain/tests/statistics.rs compares the Rust results with this file. The survival data
are synthetic (fixed seed) and contain ties, censoring at event times and a censored last time.
"""

import json
import random

import scipy
import lifelines
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from scipy.stats import beta


def clopper_pearson(x, n, level):
    alpha = 1 - level
    lower = 0.0 if x == 0 else float(beta.ppf(alpha / 2, x, n - x + 1))
    upper = 1.0 if x == n else float(beta.ppf(1 - alpha / 2, x + 1, n - x))
    return {"successes": x, "trials": n, "level": level, "lower": lower, "upper": upper}


def synthetic_group(rng, size, scale, follow_up):
    times, events = [], []
    for _ in range(size):
        t = round(rng.expovariate(1 / scale))
        c = rng.randint(30, follow_up)
        times.append(float(min(t, c)))
        events.append(t <= c)
    return times, events


def km(times, events, level=0.95):
    fitter = KaplanMeierFitter(alpha=1 - level).fit(times, events)
    table = fitter.event_table
    ci = fitter.confidence_interval_
    steps = []
    for t, row in table.iterrows():
        if row["observed"] == 0 or t == 0:
            continue
        steps.append({
            "time": float(t),
            "at_risk": int(row["at_risk"]),
            "events": int(row["observed"]),
            "survival": float(fitter.survival_function_.loc[t].iloc[0]),
            "lower": float(ci.loc[t].iloc[0]),
            "upper": float(ci.loc[t].iloc[1]),
        })
    median = fitter.median_survival_time_
    return {"steps": steps, "median": None if median == float("inf") else float(median)}


def main():
    rng = random.Random(1221)
    intervals = [clopper_pearson(x, n, level) for (x, n, level) in [
        (9, 17, 0.95), (1, 18, 0.95), (22, 53, 0.95), (13, 36, 0.95), (0, 10, 0.95), (10, 10, 0.95),
        (5, 29, 0.90), (17, 35, 0.99), (1, 1, 0.95), (3, 200, 0.95)]]
    datasets = []
    for name, (size_a, scale_a, size_b, scale_b) in {
        "small": (17, 400, 18, 250),
        "medium": (60, 500, 55, 300),
    }.items():
        a_times, a_events = synthetic_group(rng, size_a, scale_a, 900)
        b_times, b_events = synthetic_group(rng, size_b, scale_b, 900)
        test = logrank_test(a_times, b_times, event_observed_A=a_events, event_observed_B=b_events)
        datasets.append({
            "name": name,
            "a": {"times": a_times, "events": a_events, "km": km(a_times, a_events)},
            "b": {"times": b_times, "events": b_events, "km": km(b_times, b_events)},
            "logrank": {"chi_square": float(test.test_statistic), "p_value": float(test.p_value)},
        })
    print(json.dumps({
        "generated_by": "tools/reference/stats_reference.py",
        "scipy": scipy.__version__,
        "lifelines": lifelines.__version__,
        "clopper_pearson": intervals,
        "survival": datasets,
    }, indent=1))


if __name__ == "__main__":
    main()
