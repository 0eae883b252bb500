"""The supervisor's rules as tables: readiness with workers, restart backoff, the crash loop."""

from __future__ import annotations

import pytest

from kexpose.proxy.errors import ProxyError
from kexpose.proxy.settings import WorkerSettings
from kexpose.proxy.workers import CrashLoop, ready_to_serve


@pytest.mark.parametrize(
    ("up", "stopping", "source_ready", "serving", "ready"),
    [
        (True, False, True, 2, True),
        (True, False, True, 1, True),  # one worker died: the other still serves
        (True, False, True, 0, False),  # none serves: nothing would answer
        (False, False, True, 1, False),  # the first workers are still starting
        (True, False, False, 2, False),  # no complete object set yet
        (True, True, True, 2, False),  # shutting down
    ],
)
def test_readiness(up: bool, stopping: bool, source_ready: bool, serving: int, ready: bool) -> None:
    assert (
        ready_to_serve(up=up, stopping=stopping, source_ready=source_ready, serving=serving)
        == ready
    )


SETTINGS = WorkerSettings(
    restart_backoff_initial=0.1, restart_backoff_max=1.0, restart_limit=5, restart_window=60.0
)


@pytest.mark.parametrize(
    ("deaths", "backoff"),
    [
        ([0.0], 0.1),
        ([0.0, 1.0], 0.2),
        ([0.0, 1.0, 2.0, 3.0], 0.8),
        ([0.0, 1.0, 2.0, 3.0, 4.0], 1.0),  # capped at restart_backoff_max
        ([0.0, 61.0], 0.1),  # a death older than the window is forgiven
        ([0.0, 10.0, 20.0, 30.0, 40.0, 100.0, 101.0], 0.2),  # the first five forgiven
    ],
)
def test_backoff(deaths: list[float], backoff: float) -> None:
    loop = CrashLoop(SETTINGS)
    delays = [loop.died(t) for t in deaths]
    assert delays[-1] == pytest.approx(backoff)


def test_one_death_past_the_limit_within_the_window_is_a_crash_loop() -> None:
    loop = CrashLoop(SETTINGS)
    for t in range(5):
        loop.died(float(t))
    with pytest.raises(ProxyError, match=r"crash loop: workers died 6 times within 60 s"):
        loop.died(5.0)


def test_deaths_spread_wider_than_the_window_never_end_the_pod() -> None:
    loop = CrashLoop(SETTINGS)
    for t in range(100):
        loop.died(t * 13.0)  # at most 5 within any 60 s
