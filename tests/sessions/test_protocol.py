import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biofeed.sessions.protocol import (
    EARLY_ONSET_S,
    PROTOCOLS_FOLDER,
    Cue,
    CueKind,
    CueSchedule,
    cue_event,
    load_exercise_protocol,
    schedule_offset_from_events,
)


def _write(tmp_path, body: str, name: str = "p"):
    path = tmp_path / f"{name}.toml"
    path.write_text(body)
    return path


PROTOCOL = """
kind = "exercise"
name = "mini"
posture = "lying_supine"
lead_in_s = 30.0
[timing]
contract_s = 3.0
release_s = 6.0
rest_s = 125.0
[text]
contract = "squeeze"
[[trial]]
kind = "real"
[[trial]]
kind = "sham"
[[trial]]
kind = "real"
release_s = 8.0
"""


def test_a_protocol_becomes_back_to_back_cues(tmp_path):
    schedule = load_exercise_protocol(str(_write(tmp_path, PROTOCOL)))
    assert schedule.name == "mini" and schedule.posture == "lying_supine"
    kinds = [c.kind for c in schedule.cues]
    assert kinds == [
        CueKind.REST,
        CueKind.CONTRACT,
        CueKind.RELEASE,
        CueKind.REST,
        CueKind.STAY_RELAXED,
        CueKind.STAY_RELAXED,
        CueKind.REST,
        CueKind.CONTRACT,
        CueKind.RELEASE,
        CueKind.REST,
    ]
    assert schedule.duration_s == pytest.approx(30 + 134 + 134 + 136)
    assert schedule.cues[1].text == "squeeze"  # from [text]
    assert schedule.cues[2].text.startswith("Release slowly")  # default wording


def test_sham_trials_keep_the_waits_of_real_ones(tmp_path):
    schedule = load_exercise_protocol(str(_write(tmp_path, PROTOCOL)))
    real, sham, last = schedule.trials
    assert not real.sham and sham.sham and not last.sham
    assert (real.onset_s, real.release_start_s, real.release_end_s, real.end_s) == (30.0, 33.0, 39.0, 164.0)
    assert sham.release_start_s - sham.onset_s == real.release_start_s - real.onset_s
    assert sham.release_end_s - sham.onset_s == real.release_end_s - real.onset_s
    assert sham.end_s - sham.release_end_s == real.end_s - real.release_end_s
    assert last.release_end_s - last.release_start_s == 8.0  # per-trial override
    assert all(c.sham for c in schedule.cues if c.trial_index == sham.index)


def test_state_at_gives_the_cue_its_countdown_and_the_next_one(tmp_path):
    schedule = load_exercise_protocol(str(_write(tmp_path, PROTOCOL)))
    state = schedule.state_at(31.5)
    assert state is not None
    assert state.cue.kind is CueKind.CONTRACT
    assert state.elapsed_s == pytest.approx(1.5) and state.remaining_s == pytest.approx(1.5)
    assert state.fraction == pytest.approx(0.5)
    assert state.next_cue is not None and state.next_cue.kind is CueKind.RELEASE
    assert schedule.state_at(-0.1) is None
    assert schedule.state_at(schedule.duration_s) is None
    assert schedule.state_at(schedule.duration_s - 0.01).next_cue is None


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=0.01, max_value=40.0), min_size=1, max_size=60))
def test_cues_starting_announces_every_cue_once_whatever_the_ticks(steps):
    schedule = load_exercise_protocol("pandiculation-sham")
    announced = []
    previous = -1.0
    t = 0.0
    for step in steps * 20:
        announced += schedule.cues_starting(previous, t)
        previous, t = t, t + step
        if previous > schedule.duration_s:
            break
    announced += schedule.cues_starting(previous, schedule.duration_s)
    expected = [c for c in schedule.cues if c.start_s <= max(previous, schedule.duration_s)]
    assert [c.index for c in announced] == [c.index for c in expected]


def test_trials_line_up_with_contractions_near_their_cue(tmp_path):
    schedule = load_exercise_protocol(str(_write(tmp_path, PROTOCOL)))
    real, sham, _ = schedule.trials
    assert schedule.trial_for_onset(real.onset_s + 1.0) == real
    assert schedule.trial_for_onset(real.onset_s - EARLY_ONSET_S + 0.1) == real
    assert schedule.trial_for_onset(real.onset_s - EARLY_ONSET_S - 0.1) is None
    assert schedule.trial_for_onset(real.release_end_s + 1.0) is None  # during the rest: not this trial's
    assert schedule.trial_for_onset(sham.onset_s + 2.0) == sham


def test_cue_events_give_the_protocol_offset_in_a_recording(tmp_path):
    schedule = load_exercise_protocol(str(_write(tmp_path, PROTOCOL)))
    cue = schedule.cues[1]
    event = cue_event(cue, time_s=cue.start_s + 12.5, sample_index=1234, protocol="mini")
    assert event["type"] == "cue" and event["cue"] == "contract" and event["trial_index"] == 0
    assert schedule_offset_from_events([{"type": "window"}, event]) == pytest.approx(12.5)
    assert schedule_offset_from_events([{"type": "window"}]) is None


def test_shipped_protocols_load():
    names = sorted(p.stem for p in PROTOCOLS_FOLDER.glob("*.toml"))
    assert {"calibration", "pandiculation", "pandiculation-sham"} <= set(names)
    three = load_exercise_protocol("pandiculation")
    assert [t.sham for t in three.trials] == [False, False, False]
    # SCIENCE.md 6.3: the rest after a release holds the 60-120 s persistence window
    assert all(t.end_s - t.release_end_s >= 120.0 for t in three.trials)
    # SCIENCE.md 4: 30-60 s of rest before the first contraction
    assert three.trials[0].onset_s >= 30.0
    with_sham = load_exercise_protocol("pandiculation-sham")
    assert [t.sham for t in with_sham.trials] == [False, True, False, True]


def test_bad_protocols_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"no protocol 'nope'; known: .*pandiculation"):
        load_exercise_protocol("nope")
    with pytest.raises(ValueError, match="kind must be 'exercise'"):
        load_exercise_protocol("calibration")
    bad = PROTOCOL.replace('kind = "sham"', 'kind = "maybe"')
    with pytest.raises(ValueError, match="kind must be 'real' or 'sham'"):
        load_exercise_protocol(str(_write(tmp_path, bad, "bad")))
    no_rest = PROTOCOL.replace("rest_s = 125.0", "")
    with pytest.raises(ValueError, match="rest_s must be a positive number"):
        load_exercise_protocol(str(_write(tmp_path, no_rest, "norest")))
    with pytest.raises(ValueError, match="at least one"):
        load_exercise_protocol(str(_write(tmp_path, 'kind = "exercise"\nname = "x"\nlead_in_s = 5.0\n', "empty")))


def test_a_schedule_must_be_back_to_back():
    a = Cue(0, CueKind.REST, 0.0, 5.0, "", None, False)
    gap = Cue(1, CueKind.CONTRACT, 6.0, 8.0, "", 0, False)
    with pytest.raises(ValueError, match="must start at 5 s"):
        CueSchedule([a, gap])
