"""Command line: `python -m framework +experiment=ecg5000 classifier=svm`."""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from framework import sweeps
from framework.discovery import builtin_conf_dir
from framework.labels import LabellingPaused

EXIT_PAUSED = 75


@hydra.main(
    version_base="1.3", config_path=str(builtin_conf_dir()), config_name="config"
)
def main(cfg: DictConfig) -> float:
    """Run one experiment and return its final validation F1.

    Hydra hands the value to optimising sweepers (Optuna, Nevergrad), which
    must tune on validation; test F1 is only reported.
    """
    # Imported here, in the process that runs the job: the main process of a
    # sweep with a parallel launcher then starts without torch and Lightning,
    # which take most of its start-up time.
    from framework.experiment import Terminated, run

    runtime = HydraConfig.get().runtime
    choices = {
        group: str(option)
        for group, option in runtime.choices.items()
        if not group.startswith("hydra/") and option is not None
    }
    try:
        summary = run(cfg, runtime.output_dir, choices=choices)
    except LabellingPaused as paused:
        # Not a failure: the labels are awaited. 75 is EX_TEMPFAIL, "try again
        # later", so that a script can tell this stop from an error.
        print(f"Paused: {paused}", file=sys.stderr)
        sys.exit(EXIT_PAUSED)
    except Terminated:
        # run() has logged where the finished iterations are; a traceback
        # would only bury that line. 143 and 130 are the shell's codes for
        # SIGTERM and Ctrl-C.
        sys.exit(143)
    except KeyboardInterrupt:
        sys.exit(130)
    return summary["final"]["validation"]["f1"]


if __name__ == "__main__":
    sweeps.install()
    main()
