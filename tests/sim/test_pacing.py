import pytest

from biofeed.sim.device import SimulatedDevice
from biofeed.sim.pacing import paced_chunks


class FakeClock:
    """Host time that moves only when the code under test waits (or the test says so)."""

    def __init__(self) -> None:
        self.now_s = 100.0
        self.waits_s: list[float] = []
        self.stop_after: int | None = None

    def clock(self) -> float:
        return self.now_s

    def wait(self, seconds: float) -> bool:
        self.waits_s.append(seconds)
        self.now_s += seconds
        return self.stop_after is not None and len(self.waits_s) >= self.stop_after


def _run(device, fake, **kwargs):
    options = {"speed": 1.0, "step_s": 0.02, "max_chunk_bytes": 4096} | kwargs
    return list(paced_chunks(device, clock=fake.clock, wait=fake.wait, **options))


def test_real_time_pacing_waits_until_each_step_is_due_and_loses_nothing():
    fake = FakeClock()
    chunks = _run(SimulatedDevice("rest", seed=1, duration_s=2.0), fake)
    assert b"".join(c.data for c in chunks) == SimulatedDevice("rest", seed=1, duration_s=2.0).frames_until(9.0)
    assert fake.now_s - 100.0 == pytest.approx(2.0)
    assert [c.device_time_s for c in chunks[:3]] == pytest.approx([0.0, 0.02, 0.04])
    assert all(c.due_s == pytest.approx(c.device_time_s) for c in chunks)


def test_speed_and_clock_error_scale_the_host_time():
    fake = FakeClock()
    _run(SimulatedDevice("rest", seed=1, duration_s=2.0, clock_ppm=5000.0), fake, speed=4.0)
    assert fake.now_s - 100.0 == pytest.approx(2.0 / 1.005 / 4.0)


def test_a_late_consumer_gets_the_missed_steps_back_to_back():
    fake = FakeClock()
    device = SimulatedDevice("rest", seed=1, duration_s=2.0)
    chunks = paced_chunks(device, speed=1.0, step_s=0.02, max_chunk_bytes=4096, clock=fake.clock, wait=fake.wait)
    next(chunks)
    fake.now_s += 1.0  # the consumer stalls for a second
    n_before = len(fake.waits_s)
    rest = list(chunks)
    assert fake.waits_s[n_before : n_before + 49] == [0.0] * 49
    assert rest[-1].device_time_s == pytest.approx(2.0)


def test_speed_zero_never_waits_and_chunks_are_bounded():
    fake = FakeClock()
    chunks = _run(SimulatedDevice("rest", seed=1, duration_s=3.0), fake, speed=0.0, step_s=1.0, max_chunk_bytes=1000)
    assert fake.now_s == 100.0 and set(fake.waits_s) == {0.0}
    assert max(len(c.data) for c in chunks) == 1000
    assert chunks[-1].due_s == pytest.approx(3.0)


def test_a_true_wait_stops_it():
    fake = FakeClock()
    fake.stop_after = 5
    device = SimulatedDevice("rest", seed=1, duration_s=2.0)
    assert len(_run(device, fake)) == 4
    assert not device.finished


@pytest.mark.parametrize(("kwargs", "message"), [({"speed": -1.0}, "speed"), ({"step_s": 0.0}, "step_s")])
def test_bad_pacing_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _run(SimulatedDevice("rest", duration_s=1.0), FakeClock(), **kwargs)
