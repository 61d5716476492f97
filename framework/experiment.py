"""One run of the method: data, encoder, seed set, active-learning loop, outputs.

`run` takes a composed config and is what the command line calls; tests and
notebooks call it directly.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import threadpoolctl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from framework.cache import CachedEncoder, EncoderCache, encoder_key
from framework.data import Splits, split_series
from framework.detector import DETECTOR_DIR, DetectorWriter
from framework.encoder import (
    check_encoder,
    encode_and_score,
    fit_encoder,
    reconstruction_profiles,
)
from framework.evaluation import anomaly_metrics, threshold_references
from framework.features import Features
from framework.interfaces import (
    Seed,
    check_classifier,
    check_query_config,
    check_query_strategy,
    check_seed,
)
from framework.labels import LabellingPaused
from framework.loop import (
    ActiveLearningLoop,
    ResumeError,
    Step,
    Stopping,
    check_loop_settings,
    make_estimator,
    resampler_fallbacks,
)
from framework.outputs import RunRecorder, format_row, plot_learning_curve
from framework.rerun import (
    UnfinishedRun,
    finished_summary,
    run_dir_lock,
    unfinished_run,
)
from framework.resampling import ResamplerError

log = logging.getLogger(__name__)


class Timer:
    """Seconds spent in each named stage of a run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 3)
        log.info("stage %s finished in %.1f s", name, self.seconds[name])


def build_plugins(cfg: DictConfig) -> dict[str, Any]:
    """Instantiate and check the plugins that need no data, before training."""
    check_loop_settings(cfg.loop.iterations, cfg.loop.n_instances)
    max_epochs = cfg.trainer.get("max_epochs")
    if not isinstance(max_epochs, int) or max_epochs < 1:
        raise ValueError(
            f"trainer.max_epochs={max_epochs!r} is invalid: the encoder must "
            "train for at least 1 epoch"
        )
    classifier = instantiate(cfg.classifier)
    check_classifier(classifier)
    resampler = instantiate(cfg.resampler) if cfg.get("resampler") else None
    if resampler is not None and not callable(getattr(resampler, "fit_resample", None)):
        raise TypeError(
            f"resampler {type(resampler).__qualname__} has no fit_resample; it "
            "must be an imbalanced-learn sampler"
        )
    check_query_config(cfg.query)
    query_strategy = instantiate(cfg.query)
    check_query_strategy(query_strategy)
    estimator = make_estimator(
        resampler,
        classifier,
        on_resampler_failure=cfg.loop.get("on_resampler_failure", "skip"),
    )
    features = instantiate(cfg.features) if cfg.get("features") else Features()
    if not isinstance(features, Features):
        raise TypeError(
            f"features config builds {type(features).__qualname__}; it must "
            "build framework.features.Features"
        )
    stopping = Stopping(
        label_budget=cfg.loop.get("label_budget"),
        stable_rounds=cfg.loop.get("stable_rounds"),
        stable_tolerance=cfg.loop.get("stable_tolerance", 0.0),
    )
    return {
        "stopping": stopping,
        "features": features,
        "estimator": estimator,
        "query_strategy": query_strategy,
        "seeder": instantiate(cfg.seeder),
        "tracker": instantiate(cfg.logger),
    }


def load_splits(cfg: DictConfig) -> Splits:
    source = instantiate(cfg.data.source)
    series, classes = source.load()
    log.info(
        "data %s loaded: %d series of length %d",
        cfg.data.name,
        len(series),
        series.shape[1],
    )
    return split_series(
        series,
        classes,
        anomaly_classes=cfg.data.anomaly_classes,
        fractions=dict(cfg.data.split),
        seed=cfg.seed,
    )


def trained_encoder(
    cfg: DictConfig, splits: Splits
) -> tuple[CachedEncoder, dict[str, Any]]:
    """Train the encoder on the pool, or load it from the cache when enabled.

    Returns:
        The weights with the codes and scores of every split, and a record of
        where they came from for the summary.
    """
    module = instantiate(cfg.encoder.module)
    check_encoder(module)
    trainer_options = OmegaConf.to_container(cfg.trainer, resolve=True)

    def train() -> CachedEncoder:
        fit = fit_encoder(
            module,
            trainer_options,
            splits.pool.series,
            splits.validation.series,
            batch_size=cfg.encoder.batch_size,
            seed=cfg.seed,
        )
        features, scores = {}, {}
        for name, split in splits.items():
            features[name], scores[name] = encode_and_score(module, split.series)
        return CachedEncoder(module.state_dict(), features, scores, fit)

    if not cfg.encoder.get("cache", False):
        log.info("encoder cache off: training")
        return train(), {"cache": "off"}

    key = encoder_key(
        {name: split.series for name, split in splits.items()},
        OmegaConf.to_container(cfg.encoder, resolve=True),
        trainer_options,
        cfg.seed,
    )
    cache = EncoderCache(cfg.encoder.cache_dir)
    with cache.lock(key):
        cached = cache.load(key)
        if cached is not None:
            entry = cache.entry(key)
            log.info("encoder loaded from the cache %s", entry)
            return cached, {"cache": "loaded", "cache_entry": str(entry)}
        log.info("encoder %s not in the cache: training", key)
        trained = train()
        entry = cache.store(key, trained)
        log.info("encoder stored in the cache %s", entry)
        return trained, {"cache": "stored", "cache_entry": str(entry)}


def classifier_features(
    cfg: DictConfig, feature_set: Features, encoder: CachedEncoder, splits: Splits
) -> dict[str, np.ndarray]:
    """Build the classifier's features of every split from the encoder's outputs.

    The statistics of added columns come from the pool. A feature set that
    needs the error at each time step gets it from the trained weights.
    """
    profiles: dict[str, np.ndarray | None] = dict.fromkeys(encoder.features)
    if feature_set.needs_profile:
        module = instantiate(cfg.encoder.module)
        module.load_state_dict(encoder.state_dict)
        profiles = {
            name: reconstruction_profiles(module, split.series)
            for name, split in splits.items()
        }
    feature_set.fit(encoder.features["pool"], encoder.scores["pool"], profiles["pool"])
    features = {
        name: feature_set.transform(
            encoder.features[name], encoder.scores[name], profile
        )
        for name, profile in profiles.items()
    }
    log.info(
        "classifier features: %d per series (code %d, added %d)",
        features["pool"].shape[1],
        encoder.features["pool"].shape[1],
        features["pool"].shape[1] - encoder.features["pool"].shape[1],
    )
    return features


def evaluate(
    step: Step, features: dict[str, np.ndarray], splits: Splits
) -> list[dict[str, Any]]:
    """Score the learner of one step on the validation and test splits."""
    rows = []
    for name in ("validation", "test"):
        split = getattr(splits, name)
        probability = step.learner.predict_proba(features[name])[:, 1]
        predicted = step.learner.predict(features[name])
        rows.append(
            {
                "iteration": step.iteration,
                "split": name,
                "labels_used": step.labels_used,
                "n_labelled": step.n_labelled,
                **anomaly_metrics(split.labels, predicted, probability),
            }
        )
    return rows


def describe_seed(seed: Seed, pool_labels: np.ndarray) -> dict[str, Any]:
    """Summarise the seed set, with how many pseudo-labels are correct."""
    truth = pool_labels[seed.indices]
    return {
        "threshold": seed.threshold,
        "pseudo_anomalies": int((seed.labels == 1).sum()),
        "pseudo_normals": int((seed.labels == 0).sum()),
        "pseudo_label_accuracy": float((truth == seed.labels).mean()),
        "true_anomalies_in_seed": int(truth.sum()),
    }


def run(
    cfg: DictConfig, run_dir: str | Path, choices: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run the whole method once and write its files to `run_dir`.

    When `run_dir` contains a finished run of the same config and
    `skip_finished` is true, that run's summary is returned and nothing is
    recomputed. An unfinished run there is started over, or continued after
    its last finished iteration when `resume` is true (see `framework.rerun`).

    Args:
        cfg: The composed config.
        run_dir: Directory for results.csv, summary.json and the plot.
        choices: The option picked in each config group, for example
            {"classifier": "svm"}; derived from the `_target_`s when None.

    Returns:
        The summary that is also written to `run_dir/summary.json`.

    Raises:
        RuntimeError: another process is running in `run_dir`.
    """
    with run_dir_lock(Path(run_dir)):
        return _run_locked(cfg, Path(run_dir), choices)


def _run_locked(
    cfg: DictConfig, run_dir: Path, choices: dict[str, str] | None
) -> dict[str, Any]:
    config = OmegaConf.to_container(cfg, resolve=True)
    if cfg.get("skip_finished", True):
        finished = finished_summary(run_dir, config)
        if finished is not None:
            log.info(
                "%s already contains this finished run; skipping it "
                "(skip_finished=false runs it again)",
                run_dir,
            )
            return finished
    previous = unfinished_run(run_dir, config) if cfg.get("resume", False) else None

    if cfg.get("threads"):
        limit_threads(int(cfg.threads))
    timer = Timer()
    recorder = RunRecorder(run_dir, start_over=previous is None)
    recorder.update_summary(
        config=config, choices=choices or _choices(cfg), stop_reason="running"
    )
    if previous is not None:
        recorder.rows = list(previous.rows)
        recorder.queries = list(previous.queries)
        recorder.update_summary(
            resumed_after_iteration=previous.last_iteration,
            final=_final(previous.rows[-2:]),
        )
        log.info(
            "resuming the run in %s after its iteration %d; the oracle's labels "
            "of iterations 1 to %d come from %s",
            run_dir,
            previous.last_iteration,
            previous.last_iteration,
            recorder.queries_path.name,
        )

    tracker = None
    restore = _stop_on_sigterm()
    try:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        plugins = build_plugins(cfg)
        tracker = plugins["tracker"]
        tracker.start(config, str(run_dir))
        summary = _run_stages(cfg, plugins, timer, recorder, previous)
    except BaseException as error:
        reason = stop_reason(error)
        log.log(
            logging.INFO if isinstance(error, LabellingPaused) else logging.ERROR,
            "run stopped (%s); rows of finished iterations are in %s",
            reason,
            recorder.results_path,
        )
        # The rows on disk are the truth: a stop between writing an
        # iteration's rows and its summary must not leave `final` behind.
        final = {"final": _final(recorder.rows[-2:])} if recorder.rows else {}
        recorder.update_summary(
            completed=False, stop_reason=reason, timings=timer.seconds, **final
        )
        recorder.make_durable()
        if tracker is not None:
            tracker.finish({"completed": False})
        raise
    finally:
        restore()
    recorder.make_durable()
    tracker.finish({"completed": True, **_flatten(summary["final"])})
    return summary


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM, as from `kill` or a job scheduler."""


def _stop_on_sigterm() -> Callable[[], None]:
    """Turn SIGTERM into `Terminated` so a killed run records where it stopped.

    Returns a function that puts the previous handler back. Outside the main
    thread, where Python cannot set handlers, it changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        raise Terminated("SIGTERM")

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def stop_reason(error: BaseException) -> str:
    """Describe why a run stopped, for summary.json."""
    # Lightning turns Ctrl-C during training into SystemExit after its own
    # clean-up; both mean the user stopped the run.
    if isinstance(error, Terminated):
        return "interrupted by SIGTERM"
    if isinstance(error, LabellingPaused):
        return f"waiting for labels: {error}"
    if isinstance(error, (KeyboardInterrupt, SystemExit)):
        return "interrupted"
    return f"failed: {type(error).__name__}: {error}"


def limit_threads(threads: int) -> None:
    """Cap the threads of torch and of the BLAS and OpenMP pools of numpy.

    Parallel jobs that each start one thread per core spend most of their
    time waiting for each other. With n jobs on c cores, c // n threads per
    job avoids that.
    """
    if threads < 1:
        raise ValueError(f"threads={threads} must be at least 1, or null")
    torch.set_num_threads(threads)
    threadpoolctl.threadpool_limits(threads)
    log.info("using %d threads", threads)


def _run_stages(
    cfg: DictConfig,
    plugins: dict[str, Any],
    timer: Timer,
    recorder: RunRecorder,
    previous: UnfinishedRun | None,
) -> dict[str, Any]:
    with timer.stage("data"):
        splits = load_splits(cfg)
    recorder.update_summary(
        data={
            name: {"series": len(split), "anomalies": split.n_anomalies}
            for name, split in splits.items()
        }
    )
    # Built before the encoder trains, so that a person's oracle reports a bad
    # setting (a busy port, no terminal) at once and can show its page early.
    oracle = instantiate(cfg.oracle, pool=splits.pool)
    try:
        return _train_and_query(cfg, plugins, timer, recorder, previous, splits, oracle)
    finally:
        close = getattr(oracle, "close", None)
        if callable(close):
            close()


def _train_and_query(
    cfg: DictConfig,
    plugins: dict[str, Any],
    timer: Timer,
    recorder: RunRecorder,
    previous: UnfinishedRun | None,
    splits: Splits,
    oracle: Any,
) -> dict[str, Any]:
    with timer.stage("encoder"):
        encoder, origin = trained_encoder(cfg, splits)
    scores, fit = encoder.scores, encoder.fit
    features = classifier_features(cfg, plugins["features"], encoder, splits)
    detector = DetectorWriter(
        recorder.run_dir / DETECTOR_DIR,
        OmegaConf.to_container(cfg, resolve=True),
        encoder.state_dict,
        length=splits.pool.series.shape[1],
        features=plugins["features"].state(),
    )

    with timer.stage("seed"):
        seed = plugins["seeder"](scores["pool"])
        check_seed(seed, len(splits.pool), plugins["seeder"])
        references = threshold_references(
            seed.threshold
            if seed.threshold is not None
            else float(np.max(scores["pool"])),
            (splits.validation.labels, scores["validation"]),
            (splits.test.labels, scores["test"]),
        )
    seed_summary = describe_seed(seed, splits.pool.labels)
    log.info(
        "seed set: %d pseudo-anomalies, %d pseudo-normals, %.1f%% correct",
        seed_summary["pseudo_anomalies"],
        seed_summary["pseudo_normals"],
        100 * seed_summary["pseudo_label_accuracy"],
    )
    log.info(
        "autoencoder reference test F1: %.3f initial threshold, %.3f best "
        "validation threshold, %.3f best test threshold (upper bound)",
        references["initial_threshold"]["test_f1"],
        references["best_threshold"]["test_f1"],
        references["best_on_test"]["test_f1"],
    )
    recorder.update_summary(
        encoder={
            "epochs": fit.epochs,
            "best_epoch": fit.best_epoch,
            "best_val_loss": fit.best_val_loss,
            "training_seconds": fit.seconds,
            **origin,
        },
        seed=seed_summary,
        references=references,
    )

    # modAL breaks ties between equally uncertain series with numpy's global
    # generator.
    np.random.seed(cfg.loop.random_state)
    loop = ActiveLearningLoop(
        estimator=plugins["estimator"],
        query_strategy=plugins["query_strategy"],
        oracle=oracle,
        features=features["pool"],
        iterations=cfg.loop.iterations,
        n_instances=cfg.loop.n_instances,
        stopping=plugins["stopping"],
    )
    tracker = plugins["tracker"]
    replayed = previous.last_iteration if previous is not None else -1
    recorded = previous.recorded_queries() if previous is not None else None
    steps = loop.run(seed, recorded_queries=recorded)
    last: list[dict[str, Any]] = []
    latest: Step | None = None
    try:
        with timer.stage("loop"):
            for step, last in _evaluated_steps(steps, seed, features, splits):
                if step.iteration <= replayed:
                    # Already on disk: check that this run computes the same rows.
                    _check_replayed(last, recorder.rows)
                else:
                    if step.iteration > 0:
                        recorder.add_queries(
                            step.iteration,
                            step.queried,
                            step.labels,
                            series_ids=splits.pool.ids[step.queried],
                        )
                    recorder.add_rows(last)
                # Replayed iterations count too, because the writer deleted the
                # classifier of the run being resumed.
                latest = step
                validation, test = last
                log.info(
                    "iteration %d/%d: %d labels used, F1 test %.3f, validation %.3f%s",
                    step.iteration,
                    loop.iterations,
                    step.labels_used,
                    test["f1"],
                    validation["f1"],
                    " (as in the resumed run)" if step.iteration <= replayed else "",
                )
                tracker.log(
                    _flatten({"validation": validation, "test": test}), step.iteration
                )
                if step.iteration > replayed:
                    recorder.update_summary(
                        final=_final(last),
                        resampler_fallbacks=resampler_fallbacks(plugins["estimator"]),
                        stop_reason="running",
                        timings=timer.seconds,
                    )
    finally:
        # The classifier of the last iteration on disk is written once, also
        # when the run stops early. A write at every iteration took a tenth of
        # a light run's time in a profiled sweep.
        if latest is not None:
            detector.save_classifier(
                latest.learner.estimator, latest.iteration, latest.labels_used
            )
    fallbacks = resampler_fallbacks(plugins["estimator"])
    if fallbacks:
        log.warning(
            "resampler_fallbacks=%d: the resampler failed or left one class in "
            "that many fits of the classifier, which ran without resampling "
            "(loop.on_resampler_failure=skip)",
            fallbacks,
        )

    if cfg.get("plot", True):
        path = recorder.run_dir / "learning_curve.png"
        with timer.stage("plot"):
            title = _title(cfg, recorder.summary["choices"])
            plot_learning_curve(recorder.rows, references, path, title=title)
    recorder.update_summary(
        completed=True,
        stop_reason=loop.stop_reason,
        stopped_by=loop.stopped_by,
        final=_final(last),
        resampler_fallbacks=fallbacks,
        timings=timer.seconds,
    )
    log.info("results written to %s", recorder.run_dir)
    return recorder.summary


def _evaluated_steps(
    steps: Iterator[Step],
    seed: Seed,
    features: dict[str, np.ndarray],
    splits: Splits,
) -> Iterator[tuple[Step, list[dict[str, Any]]]]:
    """Yield each step of the loop with its rows, explaining a failed seed fit."""
    try:
        first = next(steps)
        rows = evaluate(first, features, splits)
    except ResamplerError:
        raise
    except ValueError as error:
        anomalies = int((seed.labels == 1).sum())
        raise ValueError(
            f"the classifier failed on the seed set of {len(seed.labels)} series "
            f"({anomalies} pseudo-anomalies, {len(seed.labels) - anomalies} "
            f"pseudo-normals): {error}. If the seed set is too small for it, "
            "lower seeder.k to seed more series or choose a classifier that needs "
            "fewer samples"
        ) from error
    yield first, rows
    for step in steps:
        yield step, evaluate(step, features, splits)


def _check_replayed(rows: list[dict[str, Any]], recorded: list[dict[str, Any]]):
    """Raise `ResumeError` unless `rows` equal their counterparts in `recorded`."""
    before = {(row["iteration"], row["split"]): format_row(row) for row in recorded}
    for row in rows:
        now = format_row(row)
        earlier = before[(row["iteration"], row["split"])]
        if now != earlier:
            raise ResumeError(
                f"iteration {row['iteration']} gives other {row['split']} metrics "
                f"than the run being resumed ({now} where results.csv has "
                f"{earlier}); the code, the installed packages or the machine "
                "differ from that run's. Set resume=false to start the run over"
            )


def _final(rows: list[dict[str, Any]]) -> dict[str, Any]:
    validation, test = rows
    return {
        "iteration": test["iteration"],
        "labels_used": test["labels_used"],
        "n_labelled": test["n_labelled"],
        "validation": {key: validation[key] for key in _metric_keys(validation)},
        "test": {key: test[key] for key in _metric_keys(test)},
    }


def _metric_keys(row: dict[str, Any]) -> list[str]:
    return [key for key in row if key not in ("iteration", "split")]


def _flatten(nested: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}/"))
        else:
            flat[name] = value
    return flat


PLUGIN_GROUPS = (
    "data",
    "encoder",
    "features",
    "seeder",
    "resampler",
    "classifier",
    "query",
    "oracle",
    "logger",
)


def _title(cfg: DictConfig, choices: dict[str, str]) -> str:
    picked = [
        f"{group}={choices.get(group, '?')}"
        for group in ("classifier", "resampler", "query")
    ]
    return (
        f"{cfg.data.name}, seed {cfg.seed}, repeat {cfg.get('repeat', 0)}\n"
        + ", ".join(picked)
    )


def _choices(cfg: DictConfig) -> dict[str, str]:
    """Name each group's plugin by its class or function, without Hydra."""
    names = {}
    for group in PLUGIN_GROUPS:
        node = cfg.get(group)
        if group in ("data", "encoder") and node is not None:
            node = node.get("source") or node.get("module")
        target = node.get("_target_") if node else None
        names[group] = str(target).rsplit(".", 1)[-1] if target else "none"
    return names
