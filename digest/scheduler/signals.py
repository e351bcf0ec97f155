"""Process plumbing of ``digest serve`` / ``digest scheduler``: signals and the main loop.

SIGTERM/SIGINT ask the service to stop (take no new work, let the running job finish); a
second signal gets the default behaviour and ends the process at once, which the
crash-safe runner recovers from.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from digest.scheduler.service import SchedulerService

log = logging.getLogger(__name__)


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM/SIGINT set ``stop``; a second signal gets the default behaviour (exit now,
    which the crash-safe runner recovers from)."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info(
            "%s received: finishing the running job, then exiting", signal.Signals(signum).name
        )
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def run_until_stopped(service: SchedulerService, stop: threading.Event) -> None:
    """Run ``service`` in the background until ``stop`` is set, then stop it cleanly."""
    service.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        service.stop()
