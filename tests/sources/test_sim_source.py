import threading

import pytest

from biofeed.sim.device import SimulatedDevice
from biofeed.sources.base import Source, SourceUrl
from biofeed.sources.sim import SimSource


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 50.0

    def clock(self) -> float:
        return self.now_s

    def wait(self, seconds: float) -> bool:
        self.now_s += seconds
        return False


def _open(url: str, fake: FakeClock | None = None) -> SimSource:
    fake = fake or FakeClock()
    return SimSource.from_url(SourceUrl.parse(url), clock=fake.clock, wall_clock=lambda: 1_000_000.0, wait=fake.wait)


def test_url_parameters_reach_the_device():
    source = _open("sim://pandiculation-poor?seed=3&speed=0&duration=12&clock_ppm=-20&noise=1.2&ecg=40&mains=60")
    device = source.device
    assert (device.scenario, device.seed, device.duration_s, device.clock_ppm) == ("pandiculation-poor", 3, 12.0, -20.0)
    assert (device.noise_floor_uv, device.ecg_r_peak_uv, device.mains_hz) == (1.2, 40.0, 60.0)
    assert source.url == device.url + "&speed=0"
    assert isinstance(source, Source)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sim://rest?colour=red", "does not take colour; allowed: clock_ppm, duration, ecg, mains, noise, seed, speed"),
        ("sim://rest?seed=1.5", "seed"),
        ("sim://rest?seed=-1", "seed"),
        ("sim://rest?speed=-1", "speed"),
        ("sim://rest?duration=0", "duration"),
        ("sim://rest?mains=55", "mains"),
        ("sim://sleep", "allowed: rest, pandiculation"),
    ],
)
def test_bad_urls_are_refused(url, message):
    with pytest.raises(ValueError, match=message):
        _open(url)


def test_real_time_chunks_are_paced_and_stamped_by_the_clock():
    fake = FakeClock()
    source = _open("sim://rest?seed=1&duration=2", fake)
    chunks = list(source.chunks())
    assert b"".join(c.data for c in chunks) == SimulatedDevice("rest", seed=1, duration_s=2.0).frames_until(9.0)
    assert max(len(c.data) for c in chunks) <= 4096
    assert len(chunks) == 101  # one per 20 ms of device time, from 0 to 2 s
    assert fake.now_s == pytest.approx(52.0)
    assert [c.received_at - 1_000_000.0 for c in chunks[:3]] == pytest.approx([0.0, 0.02, 0.04])


def test_double_speed_takes_half_the_host_time():
    fake = FakeClock()
    list(_open("sim://rest?seed=1&duration=2&speed=2", fake).chunks())
    assert fake.now_s == pytest.approx(51.0)


def test_speed_zero_stamps_the_times_a_real_time_run_would_have():
    fake = FakeClock()
    chunks = list(_open("sim://rest?seed=1&duration=2&speed=0&clock_ppm=500", fake).chunks())
    assert fake.now_s == 50.0
    assert chunks[-1].received_at - 1_000_000.0 == pytest.approx(2.0 / 1.0005)


def test_close_from_another_thread_stops_a_real_time_source():
    source = SimSource(SimulatedDevice("rest", seed=0), speed=1.0)  # 180 s in real time, real clock
    first = threading.Event()
    n_chunks: list[int] = []

    def consume() -> None:
        for _ in source.chunks():
            n_chunks.append(1)
            first.set()

    worker = threading.Thread(target=consume)
    worker.start()
    assert first.wait(timeout=10)
    source.close()
    source.close()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert not source.device.finished


def test_close_stops_a_source_with_an_injected_wait_at_its_next_step():
    fake = FakeClock()
    source = _open("sim://rest?seed=1&duration=10", fake)
    chunks = source.chunks()
    next(chunks)
    source.close()
    assert list(chunks) == []
