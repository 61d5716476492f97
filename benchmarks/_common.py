"""Helpers shared by the benchmark scripts: run the CLI and read its outputs."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_cli(arguments: list[str], environment: dict[str, str]) -> dict[str, float]:
    """Run `python -m framework` with `arguments`; return wall time and peak RSS.

    The peak is the largest resident set of any child process so far, in MB,
    so run one measured command per benchmark process.
    """
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "framework", *arguments],
        cwd=REPO,
        env={**os.environ, **environment},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"wall_seconds": wall, "peak_rss_mb": peak_kb / 1024}


def summaries(directory: Path) -> list[dict]:
    return [
        json.loads(path.read_text()) for path in sorted(directory.rglob("summary.json"))
    ]


def parse_choices(option: str, text: str, keys: list[str]) -> dict[str, str]:
    """Split the `key=value,key=value` of `option` into the choices it names.

    Raises:
        SystemExit: a part is not key=value, or its key is not in `keys`.
    """
    choices = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, equals, value = part.partition("=")
        if not equals:
            raise SystemExit(
                f"{option} {text!r}: {part!r} is not key=value; write it as "
                "'resampler=renn,query=margin'"
            )
        if key not in keys:
            raise SystemExit(
                f"{option} {text!r}: {key!r} is not a choice of these runs; "
                f"use one of {', '.join(keys)}"
            )
        choices[key] = value
    return choices


def add_where_option(parser: argparse.ArgumentParser) -> None:
    """Add `--where key=value,...`, repeatable, that picks runs by their choices."""
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        help="key=value,... : only runs with these choices (repeat for more)",
    )
