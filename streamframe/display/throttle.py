"""Pacing for the view's sampler, so a live view never competes with the query it shows.

    >>> pacer = Pacer(rate=4, share=0.1)
    >>> pacer.delay(cost=0.001)      # a cheap render: the rate limit decides
    0.25
    >>> round(pacer.delay(cost=0.1), 3)  # a costly render (a huge table): back off to 10% of the time
    0.9
"""

from __future__ import annotations

import logging
import threading
import time

from streamframe.errors import ConfigError

log = logging.getLogger("streamframe.display")


class Pacer:
    """How long the sampler waits before its next sample: at least 1/`rate` seconds, and long enough
    that sampling (it holds the GIL while it renders) takes at most `share` of the wall time."""

    def __init__(self, rate: float = 4.0, share: float = 0.1):
        if not rate > 0:
            raise ConfigError(f"rate= (updates per second) must be > 0, got {rate!r}")
        if not 0 < share < 1:
            raise ConfigError(f"share= must be between 0 and 1, got {share!r}")
        self.rate, self.share = float(rate), float(share)

    def delay(self, cost: float) -> float:
        return max(1.0 / self.rate, cost * (1 - self.share) / self.share)


class Sampler:
    """Calls `sample()` on a daemon thread, paced by a Pacer, until `sample()` returns False or
    `stop()` is called. `sample()` runs off the query's thread and must never block on it."""

    def __init__(self, sample, pacer: Pacer, name: str = "streamframe-view"):
        self.sample, self.pacer = sample, pacer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _loop(self) -> None:
        delay = 1.0 / self.pacer.rate
        while not self._stop.wait(delay):
            began = time.perf_counter()
            try:
                more = self.sample()
            except Exception:  # noqa: BLE001 - a display glitch must not kill the view; try again later
                log.debug("live view sample failed", exc_info=True)
                more = True
            if more is False:
                return
            delay = self.pacer.delay(time.perf_counter() - began)
