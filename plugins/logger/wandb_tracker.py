"""Weights & Biases tracking, offline unless the user has logged in."""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

log = logging.getLogger(__name__)

MODES = ("auto", "online", "offline", "disabled")


def has_api_key() -> bool:
    """Tell whether `wandb login` or WANDB_API_KEY has provided credentials."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, PermissionError):
        return False


class WandbTracker:
    """Send the config and per-iteration metrics to a wandb run.

    Args:
        project: wandb project name.
        mode: "online", "offline", "disabled", or "auto": the WANDB_MODE
            environment variable when set, else online when credentials are
            configured and offline otherwise. Offline runs can be uploaded
            later with `wandb sync`.
        entity: wandb team or user; None for the account's default.
        group: Runs with the same group are shown together, for example the
            jobs of one sweep.
        tags: Labels attached to the run.
        init_timeout: Seconds an online run waits for the wandb server
            before it warns and tracks offline instead.
    """

    def __init__(
        self,
        project: str = "ts-active-learning",
        mode: str = "auto",
        entity: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        init_timeout: float = 30.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"logger.mode={mode!r} is invalid; use one of {MODES}")
        if (
            isinstance(init_timeout, bool)
            or not isinstance(init_timeout, (int, float))
            or not init_timeout > 0
        ):
            raise ValueError(
                f"logger.init_timeout={init_timeout!r} is invalid: it must be a "
                "number of seconds greater than 0"
            )
        self.project = project
        self.mode = mode
        self.entity = entity
        self.group = group
        self.tags = list(tags or [])
        self.init_timeout = float(init_timeout)
        self._run = None

    def resolve_mode(self) -> str:
        if self.mode != "auto":
            return self.mode
        if os.environ.get("WANDB_MODE"):
            return os.environ["WANDB_MODE"]
        return "online" if has_api_key() else "offline"

    def start(self, config: dict[str, Any], run_dir: str) -> None:
        import wandb

        mode = self.resolve_mode()
        if mode == "online":
            server = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
            log.info(
                "wandb: connecting to %s (timeout %g s)", server, self.init_timeout
            )
            try:
                self._run = self._init(wandb, config, run_dir, mode)
            except wandb.errors.CommError as error:
                first_line = str(error).splitlines()[0]
                log.warning(
                    "wandb: the online run at %s failed to start within "
                    "logger.init_timeout=%g s (%s); tracking this run offline "
                    "instead. Upload it later "
                    "with `wandb sync %s/wandb/offline-run-*`",
                    server,
                    self.init_timeout,
                    first_line,
                    run_dir,
                )
                mode = "offline"
        if self._run is None:
            self._run = self._init(wandb, config, run_dir, mode)
        log.info("wandb run %s started in %s mode", self._run.id, mode)

    def _init(self, wandb: Any, config: dict[str, Any], run_dir: str, mode: str):
        return wandb.init(
            project=self.project,
            entity=self.entity,
            group=self.group,
            tags=self.tags,
            config=config,
            dir=run_dir,
            mode=mode,
            settings=wandb.Settings(init_timeout=self.init_timeout),
        )

    def log(self, metrics: dict[str, float], step: int) -> None:
        if self._run is not None:
            self._run.log(metrics, step=step)

    def finish(self, summary: dict[str, Any]) -> None:
        if self._run is None:
            return
        self._run.summary.update(summary)
        self._run.finish()
        self._run = None
