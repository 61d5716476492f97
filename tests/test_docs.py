"""Every shell command shown in README.md and docs/ runs, so docs cannot drift.

A command is a line of an indented code block, or of a fenced block tagged
`bash`, `sh`, `shell` or `console` (or untagged); YAML and Python listings
go in fences tagged `yaml` or `python`. Lines ending in `\\` continue.

Each document's commands run in order in one temporary directory, shrunk to
seconds by the rules below:

- `python -m framework ...`: a one-epoch encoder (also of [8, 4] units when
  the command keeps the built-in encoder), two iterations, tracking off. A
  sweep keeps two values of its first swept key and one of the others.
- `python -m framework ... oracle=web` or `oracle=cli`: only composed
  (`--cfg job`), since a person must answer; test_web_oracle.py and
  test_cli_file_oracles.py run them. `oracle=file` runs and must stop with
  exit status 75, waiting for the file's labels.
- `python -m framework.report ...` and `--help`: as written.
- `python -m framework.predict ...`: as written, but a path under `data/`
  is read from the test data.
- `benchmarks/<script>.py`: the script's own options for a quick run.
- `pip install ...`: a dry run (`--dry-run --no-deps`) from the checkout.
- `TSAL_DATA_ROOT=...` becomes the test data, `TSAL_CACHE_DIR=...` a
  directory below the test's tmp_path.
- The README's set-up and test commands are checked to be the ones that
  .ci/run runs, since running them here would rebuild this environment.

A command matching no rule fails the test: add a rule rather than leave a
documented command untested.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
BIN = Path(sys.executable).parent

FRAMEWORK_SHRINK = [
    "logger=none",
    "encoder.batch_size=256",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "loop.iterations=2",
]
BUILTIN_ENCODER_SHRINK = ["encoder.module.hidden_sizes=[8,4]"]
BENCHMARK_SHRINK = {
    "main_job.py": ["--epochs", "1"],
    "grid.py": [
        *("--repeats", "1", "--epochs", "1"),
        *("--classifiers", "knn", "--resamplers", "rus"),
    ],
    "lstm_step.py": ["--steps", "1"],
    # Shrunk runs stop after 2 rounds of 10 labels.
    "study.py": ["--labels", "10", "20"],
    "headroom.py": [],
    "encoder_speed.py": [
        *("--reference-epochs", "1"),
        *("--override", "trainer.max_epochs=1"),
        *("--override", "encoder.batch_size=256"),
    ],
}


def shell_commands(markdown: str) -> list[str]:
    """Return the commands of every shell code block, continuations joined."""
    lines, fence, previous_blank = [], None, True
    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else stripped[3:].strip().lower()
            previous_blank = False
            continue
        if fence is not None:
            if fence in SHELL_FENCES:
                lines.append(line)
        elif line.startswith("    ") and (previous_blank or _in_block(lines, line)):
            lines.append(line)
        elif stripped:
            lines.append("")  # ends an indented block
        previous_blank = not stripped
    commands, current = [], ""
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        current += text[:-1].rstrip() + " " if text.endswith("\\") else text
        if not text.endswith("\\"):
            commands.append(current)
            current = ""
    return commands


def _in_block(lines: list[str], line: str) -> bool:
    return bool(lines) and lines[-1] != ""


def ci_script() -> str:
    return re.sub(r"\\\n\s*", "", (REPO / ".ci" / "run").read_text())


def shrink_sweep(overrides: list[str]) -> list[str]:
    shrunk, first = [], True
    for override in overrides:
        key, _, value = override.partition("=")
        swept = "," in value or value.startswith("range(")
        if swept and not key.startswith("hydra"):
            values = (
                [str(v) for v in range(2)]
                if value.startswith("range(")
                else value.split(",")
            )
            override = f"{key}={','.join(values[: 2 if first else 1])}"
            first = False
        shrunk.append(override)
    return shrunk


def runnable(
    command: str, data_root: Path, scratch: Path
) -> tuple[list[str], dict, Path] | None:
    """Turn a documented command into (argv, environment, cwd), or None if it is
    checked another way. Raises AssertionError for a command without a rule."""
    if command in ("./setup", ".venv/bin/pytest"):
        assert re.search(rf"^(\w+=\S+ )*{re.escape(command)}$", ci_script(), re.M), (
            f".ci/run does not run `{command}`"
        )
        return None

    words = shlex.split(command, comments=True)
    environment = {**os.environ}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        if name == "TSAL_DATA_ROOT":
            value = str(data_root)
        elif name == "TSAL_CACHE_DIR":  # keep the test's files in its tmp_path
            value = str(scratch / "cache")
        environment[name] = value
    environment.setdefault("TSAL_DATA_ROOT", str(data_root))
    program, arguments = words[0], words[1:]
    name = Path(program).name

    if name == "pip":
        assert arguments[0] == "install", command
        dry_run = ["--dry-run", "--no-deps", "--no-build-isolation", "--quiet"]
        argv = [sys.executable, "-m", "pip", "install", *dry_run, *arguments[1:]]
        return argv, environment, REPO
    if name not in ("python", "python3"):
        raise AssertionError(f"no rule to run the documented command `{command}`")
    if arguments[:2] == ["-m", "framework"]:
        overrides = arguments[2:]
        if {"oracle=web", "oracle=cli"} & set(overrides):
            overrides += ["--cfg", "job"]
        elif "--help" not in overrides:
            if "-m" in overrides or "--multirun" in overrides:
                overrides = shrink_sweep(overrides)
            overrides += FRAMEWORK_SHRINK
            if not any(o.startswith("encoder=") for o in overrides):
                overrides += BUILTIN_ENCODER_SHRINK
        if "oracle=file" in overrides:
            environment["TSAL_EXPECT_STATUS"] = "75"
        return [sys.executable, "-m", "framework", *overrides], environment, None
    if arguments[:2] == ["-m", "framework.report"]:
        return [sys.executable, *arguments], environment, None
    if arguments[:2] == ["-m", "framework.predict"]:
        prefix = "data/"
        arguments = [
            str(data_root / word[len(prefix) :]) if word.startswith(prefix) else word
            for word in arguments
        ]
        return [sys.executable, *arguments], environment, None
    if arguments and arguments[0].startswith("benchmarks/"):
        script = Path(arguments[0]).name
        assert script in BENCHMARK_SHRINK, f"add a quick-run rule for {script}"
        argv = [sys.executable, str(REPO / arguments[0]), *arguments[1:]]
        return [*argv, *BENCHMARK_SHRINK[script]], environment, None
    raise AssertionError(f"no rule to run the documented command `{command}`")


@pytest.mark.parametrize("document", DOCS, ids=lambda path: path.name)
def test_documented_commands_run(document, tmp_path, data_root):
    commands = shell_commands(document.read_text())
    for command in commands:
        prepared = runnable(command, data_root, tmp_path)
        if prepared is None:
            continue
        argv, environment, cwd = prepared
        done = subprocess.run(
            argv,
            cwd=cwd or tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=900,
        )
        expected = int(environment.get("TSAL_EXPECT_STATUS", "0"))
        assert done.returncode == expected, (
            f"{document.name}: `{command}` failed:\n{done.stderr[-3000:]}"
        )


def test_shell_commands_are_found():
    markdown = "\n".join(
        [
            "Text.",
            "",
            "    .venv/bin/python -m framework a=1 \\",
            "        b=2",
            "    # a comment",
            "",
            "```yaml",
            "key: value",
            "```",
            "```bash",
            "python -m framework --help",
            "```",
        ]
    )
    assert shell_commands(markdown) == [
        ".venv/bin/python -m framework a=1 b=2",
        "python -m framework --help",
    ]


def test_sweep_is_shrunk_to_few_jobs():
    assert shrink_sweep(["classifier=svm,knn,dt", "repeat=range(20)", "x=1"]) == [
        "classifier=svm,knn",
        "repeat=0",
        "x=1",
    ]
