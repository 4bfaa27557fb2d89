import json
import math

from bench.accuracy_detectors import DETECTORS, Detector
from bench.accuracy_signals import SNRS_DB
from bench.bench_accuracy import AccuracyPlan, evaluate, to_bench_result

TINY = AccuracyPlan(
    n_burst_records=1,
    n_bursts_per_record=2,
    n_rest_records=1,
    rest_record_s=20.0,
    n_set_point_records=0,
    run_limited=False,
    real_data_dir=None,
)


def never(data):
    return []


def always_fails(data):
    raise IndexError("arrays used as indices must be of integer (or boolean) type")


def test_tiny_run_scores_biofeed_and_reports_peers_that_miss_or_fail():
    detectors = (
        DETECTORS[0],
        Detector("never", "biofeed", "detects nothing", never),
        Detector("broken", "biofeed", "raises", always_fails),
        Detector("slow", "biofeed", "skipped without run_limited", never, max_records=1),
    )
    results = evaluate(TINY, detectors)
    biofeed_20 = results.bursts[("biofeed", "step", 20.0)]
    assert biofeed_20.n_bursts == 2 and biofeed_20.n_detected == 2
    assert results.bursts[("never", "step", 20.0)].n_detected == 0
    broken = results.bursts[("broken", "slow", 0.0)]
    assert broken.n_failed_records == 1 and broken.failures == [
        "IndexError: arrays used as indices must be of integer (or boolean) type"
    ]
    assert not any(name == "slow" for name, *_ in results.bursts)
    assert all(results.rest[("biofeed", snr)].minutes == (20.0 - 5.0) / 60 for snr in SNRS_DB)

    result = to_bench_result(results)
    assert {"name", "figures", "peers"} <= set(result) and result["name"] == "accuracy"
    json.loads(json.dumps(result, allow_nan=False))  # strict JSON: nothing measured is null, not NaN
    assert result["figures"]["step_snr20db_detection_pct"] == 100.0
    assert result["peers"]["never_step_snr20db_detection_pct"] == 0.0
    assert result["peers"]["never_step_snr20db_onset_median_abs_ms"] is None
    goals = result["goals"]
    # a peer that detects nothing never beats biofeed; the goal lines are numbers, not guesses
    assert not any(entry.startswith("never") for entry in goals["beaten_by"])
    assert goals["detection_goal_met"] == (goals["detection_pct_at_0_db"] >= 90)
    assert not math.isnan(goals["onset_median_abs_ms_at_6_db_and_above"])
    markdown = result["markdown"]
    assert "| broken | fails | fails |" in markdown
    assert "| slow * | n/r |" in markdown and "not run with `--quick`" in markdown
    assert result["failures"]["broken"]
