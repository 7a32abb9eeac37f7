"""Reference timings for `cargo bench -p trialops-outcomes --bench analysis`.

The benchmark writes a trial's data to a folder and runs this script on it:
    survival.csv     arm,time,event        one row per subject (days; event 1 or 0)
    responses.csv    arm,subject,rank      one row per qualifying central assessment (rank of
                                           its overall response: 0 CR, 1 PR, 2 MR, 3 SD, 4 PD)
    subjects.csv     arm,subject           every evaluable subject

It times, median of N runs, with the reference libraries:
- survival: lifelines' Kaplan-Meier per arm (Greenwood variance and its log(-log) band, the
  default "exponential Greenwood" interval) and lifelines' log-rank test between the two arms;
- responses: each subject's best response (pandas), the table per arm, and scipy's exact
  (Clopper-Pearson) interval of the response rate;
and prints the timings and the results as JSON for the benchmark to compare with its own.

Needs lifelines, scipy and pandas (a virtual environment:
    python3 -m venv /tmp/statsbench && /tmp/statsbench/bin/pip install lifelines scipy
then TRIALOPS_BENCH_PYTHON=/tmp/statsbench/bin/python for the benchmark).

Usage: stats_bench.py FOLDER REPEATS
"""

import json
import sys
import time

import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from scipy.stats import beta

LEVEL = 0.95


def median_time(repeats, work):
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    times.sort()
    return times[len(times) // 2], result


def survival(data):
    curves = {}
    arms = sorted(data["arm"].unique())
    for arm in arms:
        group = data[data["arm"] == arm]
        curves[arm] = KaplanMeierFitter(alpha=1 - LEVEL).fit(group["time"], group["event"])
    first, second = (data[data["arm"] == arm] for arm in arms)
    test = logrank_test(first["time"], second["time"], first["event"], second["event"])
    return curves, test


def clopper_pearson(x, n):
    alpha = 1 - LEVEL
    lower = 0.0 if x == 0 else float(beta.ppf(alpha / 2, x, n - x + 1))
    upper = 1.0 if x == n else float(beta.ppf(1 - alpha / 2, x + 1, n - x))
    return lower, upper


def responses(assessed, subjects):
    best = assessed.groupby("subject", sort=False)["rank"].min()
    table = {}
    for arm, members in subjects.groupby("arm"):
        ranks = best.reindex(members["subject"])
        counts = ranks.value_counts()
        responders = int(counts.get(0, 0) + counts.get(1, 0))
        evaluable = len(members)
        table[arm] = (responders, evaluable, clopper_pearson(responders, evaluable))
    return table


def curve_json(fitter):
    table = fitter.event_table
    band = fitter.confidence_interval_
    steps = []
    for t, row in table.iterrows():
        if row["observed"] == 0:
            continue
        steps.append([
            float(t),
            float(fitter.survival_function_.loc[t].iloc[0]),
            float(band.loc[t].iloc[0]),
            float(band.loc[t].iloc[1]),
        ])
    return steps


def main():
    folder, repeats = sys.argv[1], int(sys.argv[2])
    data = pd.read_csv(f"{folder}/survival.csv", dtype={"arm": str})
    assessed = pd.read_csv(f"{folder}/responses.csv", dtype={"arm": str, "subject": str})
    subjects = pd.read_csv(f"{folder}/subjects.csv", dtype={"arm": str, "subject": str})
    survival_seconds, (curves, test) = median_time(repeats, lambda: survival(data))
    responses_seconds, table = median_time(repeats, lambda: responses(assessed, subjects))
    print(json.dumps({
        "survival_ms": survival_seconds * 1e3,
        "responses_ms": responses_seconds * 1e3,
        "curves": {arm: curve_json(f) for arm, f in curves.items()},
        "chi_square": float(test.test_statistic),
        "p_value": float(test.p_value),
        "responses": {arm: [r, n, list(ci)] for arm, (r, n, ci) in table.items()},
    }))


if __name__ == "__main__":
    main()
