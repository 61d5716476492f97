"""Tracker that records nothing, for `logger=none`."""

from __future__ import annotations

from typing import Any


class NullTracker:
    """Accept every call of the tracker protocol and drop it."""

    def start(self, config: dict[str, Any], run_dir: str) -> None:
        pass

    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def finish(self, summary: dict[str, Any]) -> None:
        pass
