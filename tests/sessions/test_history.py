import numpy as np
import pytest

from biofeed.sessions.catalogue import Catalogue
from biofeed.sessions.history import TREND_MIN_SESSIONS, client_history, format_history, median_ci95, set_point_trend


def _sessions(rng, days, true_uv, n_windows=30, sd=0.08):
    windows = [list(v * (1.0 + sd * rng.standard_normal(n_windows))) for v in true_uv]
    return list(days), [float(np.median(w)) for w in windows], windows


def test_a_steady_drop_over_weeks_has_a_slope_and_a_ci_that_holds_it():
    rng = np.random.default_rng(1)
    days = np.arange(8) * 7.0  # weekly sessions
    truth = 6.0 - 0.4 * np.arange(8)  # -0.4 uV per week
    trend = set_point_trend(*_sessions(rng, days, truth), rng=np.random.default_rng(2), n_bootstrap=400)
    assert trend["n_sessions"] == 8
    assert trend["slope_uv_per_week"] == pytest.approx(-0.4, abs=0.08)
    low, high = trend["slope_ci95_uv_per_week"]
    assert low < -0.4 < high and high < 0.0  # the drop is real: the CI excludes 0
    assert trend["change_uv"] == pytest.approx(-2.8, abs=0.3)
    assert trend["change_ci95_uv"][1] < 0.0


def test_no_change_gives_intervals_around_zero():
    rng = np.random.default_rng(3)
    days = np.arange(6) * 3.5
    trend = set_point_trend(*_sessions(rng, days, [4.0] * 6), rng=np.random.default_rng(4), n_bootstrap=400)
    low, high = trend["slope_ci95_uv_per_week"]
    assert low < 0.0 < high
    assert trend["change_ci95_uv"][0] < 0.0 < trend["change_ci95_uv"][1]


def test_few_sessions_say_what_cannot_be_estimated():
    rng = np.random.default_rng(5)
    one = set_point_trend(*_sessions(rng, [0.0], [4.0]), rng=rng)
    assert one["change_uv"] is None and "two sessions" in one["note"]
    same_day = set_point_trend(*_sessions(rng, [0.0, 0.01], [4.0, 3.0]), rng=rng)
    assert same_day["change_uv"] == pytest.approx(-1.0, abs=0.2)
    assert same_day["change_ci95_uv"] is not None
    assert same_day["slope_uv_per_week"] is None and "less than 1 day" in same_day["note"]
    two_weeks = set_point_trend(*_sessions(rng, [0.0, 7.0], [4.0, 3.0]), rng=rng)
    assert two_weeks["slope_uv_per_week"] == pytest.approx(-1.0, abs=0.2)
    assert two_weeks["slope_ci95_uv_per_week"] is None and str(TREND_MIN_SESSIONS) in two_weeks["note"]


def test_median_ci95_covers_the_median():
    rng = np.random.default_rng(6)
    values = 3.0 + 0.2 * rng.standard_normal(30)
    low, high = median_ci95(values, np.random.default_rng(7))
    assert low < np.median(values) < high and high - low < 0.4
    assert median_ci95([3.0], rng) is None


def test_history_of_a_client_without_sessions(tmp_path):
    with Catalogue(tmp_path / "c.sqlite") as catalogue:
        client = catalogue.add_client("anna")
        catalogue.add_note(client, "first visit")
        history = client_history(catalogue, client)
    assert history["client"]["pseudonym"] == "anna"
    assert history["client"]["general_notes"] == ["first visit"]
    assert history["sessions"] == []
    assert history["trend"]["verdicts"] == {"real": {}, "sham": {}}
    assert "0 session(s)" in format_history(history)


def test_set_points_are_also_given_as_percent_of_the_reference_contraction(tmp_path):
    with Catalogue(tmp_path / "c.sqlite") as catalogue:
        client = catalogue.add_client("anna")
        calibration = catalogue.add_calibration(
            client,
            {
                "protocol": "calibration",
                "noise_floor_uv": {"es_left": 1.5},
                "reference_contraction_uv": {"es_left": 40.0},
            },
        )
        session = catalogue.add_session(client, started="2025-03-01T10:00:00Z", calibration_id=calibration.id)
        catalogue.add_set_point(session, "es_left", "before", 6.0, [5.9, 6.0, 6.1])
        catalogue.add_set_point(session, "es_left", "after", None, [])
        (row,) = client_history(catalogue, client)["sessions"]
    assert row["set_point_before_rvc_pct"] == {"es_left": pytest.approx(15.0)}
    assert row["set_point_after_rvc_pct"] == {"es_left": None}
    assert row["set_point_before_ci95_uv"]["es_left"][0] <= 6.0 <= row["set_point_before_ci95_uv"]["es_left"][1]
