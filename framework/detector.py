"""The detector a run saves: its encoder and classifier, ready to score new series.

A run writes the directory `detector/` next to its results:

- `encoder.pt`: the state_dict of the trained encoder;
- `config.yaml`: the run's resolved config, from which the encoder module is
  rebuilt before its weights are loaded;
- `classifier.joblib`: the fitted imbalanced-learn pipeline (resampler and
  classifier) of the latest finished iteration;
- `detector.json`: the format version, the series length, the features the
  classifier reads, the data set, the iteration the classifier was fitted at
  and the package versions of the run.

The classifier is rewritten after every iteration, so a run that stops early
leaves the detector of its last finished iteration.

NOTE: `classifier.joblib` is a pickle and `config.yaml` names the classes to
import, so loading a detector runs code that its author chose. Load only
detectors you trust.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

import framework
from framework.encoder import (
    check_encoder,
    encode_and_score,
    reconstruction_profiles,
)
from framework.features import Features
from framework.outputs import write_atomic

log = logging.getLogger(__name__)

# Bump when the files of a detector or their meaning change.
FORMAT = 1
DETECTOR_DIR = "detector"
ENCODER = "encoder.pt"
CONFIG = "config.yaml"
CLASSIFIER = "classifier.joblib"
METADATA = "detector.json"
# Distributions whose versions the detector records, besides the framework.
PACKAGES = ("torch", "scikit-learn", "imbalanced-learn")


class DetectorError(ValueError):
    """A detector directory is missing, incomplete or cannot be loaded."""


def _package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"ts-active-learning": framework.__version__}
    for distribution in PACKAGES:
        try:
            versions[distribution] = version(distribution)
        except PackageNotFoundError:
            versions[distribution] = None
    return versions


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DetectorWriter:
    """Write the detector of a run into `directory` and keep its classifier current.

    The encoder, the config and `detector.json` are written at once. A
    classifier left by an earlier run in `directory` is deleted, so the
    detector never pairs this encoder with another run's classifier. Until
    `save_classifier` is first called, the detector cannot be loaded.

    Args:
        directory: Where the files go, usually `<run_dir>/detector`.
        config: The run's resolved config, as a plain dict.
        encoder_state: The state_dict of the trained encoder.
        length: Values per series that the encoder was trained on.
    """

    def __init__(
        self,
        directory: Path,
        config: dict[str, Any],
        encoder_state: dict[str, torch.Tensor],
        length: int,
        features: dict[str, Any] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        # Temporary files of a run killed while writing, and the classifier
        # of an earlier run.
        for name in (ENCODER, CONFIG, CLASSIFIER, METADATA):
            for temporary in self.directory.glob(f".{name}.*"):
                temporary.unlink(missing_ok=True)
        (self.directory / CLASSIFIER).unlink(missing_ok=True)

        buffer = io.BytesIO()
        torch.save(encoder_state, buffer)
        write_atomic(self.directory / ENCODER, buffer.getvalue())
        write_atomic(self.directory / CONFIG, OmegaConf.to_yaml(config))
        data = config.get("data", {})
        self.metadata: dict[str, Any] = {
            "format": FORMAT,
            "length": int(length),
            # The code alone, unless the run's Features add columns.
            "features": features or Features().state(),
            "data": {
                "name": data.get("name"),
                "anomaly_classes": data.get("anomaly_classes"),
            },
            "classifier": None,
            "versions": _package_versions(),
        }
        self._write_metadata()
        log.info("detector written to %s", self.directory)

    def save_classifier(self, estimator: Any, iteration: int, labels_used: int):
        """Write the fitted `estimator` and record the iteration it was fitted at."""
        buffer = io.BytesIO()
        joblib.dump(estimator, buffer)
        data = buffer.getvalue()
        write_atomic(self.directory / CLASSIFIER, data)
        self.metadata["classifier"] = {
            "iteration": int(iteration),
            "labels_used": int(labels_used),
            "sha256": _sha256(data),
        }
        self._write_metadata()

    def _write_metadata(self) -> None:
        text = json.dumps(self.metadata, indent=2) + "\n"
        write_atomic(self.directory / METADATA, text)


@dataclass
class Detector:
    """A saved detector, loaded: encoder module, fitted classifier and metadata.

    Attributes:
        directory: The directory it was loaded from.
        module: The encoder, on the CPU in evaluation mode.
        estimator: The fitted pipeline of resampler and classifier.
        metadata: The contents of `detector.json`.
        config: The resolved config of the run that wrote it.
    """

    directory: Path
    module: pl.LightningModule
    estimator: Any
    metadata: dict[str, Any]
    config: dict[str, Any]

    @property
    def length(self) -> int:
        """Values per series that the detector accepts."""
        return int(self.metadata["length"])

    @property
    def features(self) -> Features:
        """How the classifier's features are built from the encoder's outputs."""
        return Features.from_state(self.metadata["features"])

    def predict(self, series: np.ndarray) -> pd.DataFrame:
        """Score each series with the encoder and classify it.

        Args:
            series: Values, shape (n_series, length).

        Returns:
            One row per series: `anomaly_probability` (the classifier's
            probability of the anomaly class), `label` (1 anomaly, 0 normal,
            from the classifier's prediction, as in the run's evaluation) and
            `score` (the encoder's anomaly score, higher is more anomalous).

        Raises:
            ValueError: `series` has another shape or length, or non-finite
                values.
        """
        series = self._checked(series)
        codes, scores = encode_and_score(self.module, series)
        features = self._classifier_features(series, codes, scores)
        probabilities = self.estimator.predict_proba(features)
        anomaly = list(self.estimator.classes_).index(1)
        return pd.DataFrame(
            {
                "anomaly_probability": probabilities[:, anomaly],
                "label": np.asarray(self.estimator.predict(features), dtype=int),
                "score": scores,
            }
        )

    def classifier_features(self, series: np.ndarray) -> np.ndarray:
        """Return the classifier's input for `series`, shape (n_series, n_features).

        Raises:
            ValueError: as `predict`.
        """
        series = self._checked(series)
        codes, scores = encode_and_score(self.module, series)
        return self._classifier_features(series, codes, scores)

    def _checked(self, series: np.ndarray) -> np.ndarray:
        series = np.asarray(series, dtype=np.float64)
        if series.ndim != 2:
            raise ValueError(
                f"series of shape {series.shape} are invalid: pass an array of "
                f"shape (n_series, {self.length}); reshape a single series with "
                "series.reshape(1, -1)"
            )
        if series.shape[1] != self.length:
            raise ValueError(
                f"series of length {series.shape[1]} do not fit this detector, "
                f"which was trained on series of length {self.length}; crop or "
                f"resample them to {self.length} values"
            )
        if not np.isfinite(series).all():
            row, column = np.argwhere(~np.isfinite(series))[0]
            raise ValueError(
                f"series {row}, value {column} is {series[row, column]}; fill in "
                "or drop missing values first"
            )
        return series

    def _classifier_features(
        self, series: np.ndarray, codes: np.ndarray, scores: np.ndarray
    ) -> np.ndarray:
        profiles = None
        if self.features.needs_profile:
            profiles = reconstruction_profiles(self.module, series)
        return self.features.transform(codes, scores, profiles)


def find_detector(path: str | Path) -> Path:
    """Return the detector directory at `path`, or in `path/detector/`.

    Raises:
        DetectorError: neither contains `detector.json`.
    """
    path = Path(path)
    if not path.exists():
        raise DetectorError(
            f"detector {path} not found; pass a run directory or its detector/ "
            "subdirectory"
        )
    for directory in (path, path / DETECTOR_DIR):
        if (directory / METADATA).is_file():
            return directory
    raise DetectorError(
        f"{path} contains no detector: neither {path / METADATA} nor "
        f"{path / DETECTOR_DIR / METADATA} exists. Pass the directory of a run "
        "that finished at least its seed fit (iteration 0), or its detector/ "
        "subdirectory"
    )


def load_detector(path: str | Path) -> Detector:
    """Load the detector saved by a run.

    Args:
        path: The detector directory, or the run directory that contains it.

    Raises:
        DetectorError: a file is missing or damaged, the format is not this
            version's, or the encoder or classifier cannot be rebuilt.
    """
    directory = find_detector(path)
    metadata = _read_metadata(directory)
    for name in (ENCODER, CONFIG, CLASSIFIER):
        if not (directory / name).is_file():
            raise DetectorError(
                f"{directory / name} not found; the run must have finished at "
                "least its seed fit (iteration 0) to save a complete detector"
            )
    _warn_on_other_versions(metadata)
    config = OmegaConf.to_container(OmegaConf.load(directory / CONFIG))
    module = _rebuild_encoder(directory, config)
    estimator = _load_classifier(directory, metadata)
    fitted = metadata["classifier"]
    log.info(
        "detector loaded from %s: %s series of length %d, classifier of "
        "iteration %d (%d oracle labels)",
        directory,
        metadata["data"]["name"],
        metadata["length"],
        fitted["iteration"],
        fitted["labels_used"],
    )
    return Detector(directory, module, estimator, metadata, config)


def _read_metadata(directory: Path) -> dict[str, Any]:
    path = directory / METADATA
    try:
        metadata = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DetectorError(f"{path} cannot be read: {error}") from None
    written = metadata.get("format")
    if written != FORMAT:
        raise DetectorError(
            f"{path} has detector format {written!r}, but this version of the "
            f"framework reads format {FORMAT}; load it with the version that "
            f"wrote it ({metadata.get('versions', {}).get('ts-active-learning')})"
        )
    try:
        Features.from_state(metadata.get("features"))
    except (TypeError, ValueError) as error:
        raise DetectorError(
            f"{path} lists the features {metadata.get('features')!r}, which this "
            f"version of the framework cannot compute ({error})"
        ) from None
    if metadata.get("classifier") is None:
        raise DetectorError(
            f"{path} records no fitted classifier; the run must have finished at "
            "least its seed fit (iteration 0) to save a complete detector"
        )
    return metadata


def _warn_on_other_versions(metadata: dict[str, Any]) -> None:
    installed = _package_versions()
    for name, saved in metadata.get("versions", {}).items():
        if saved is not None and installed.get(name) not in (None, saved):
            log.warning(
                "detector saved with %s %s, but %s is installed; its predictions "
                "may differ from the run's",
                name,
                saved,
                installed[name],
            )


def _rebuild_encoder(directory: Path, config: dict[str, Any]) -> pl.LightningModule:
    node = config.get("encoder", {}).get("module")
    if not node or "_target_" not in node:
        raise DetectorError(
            f"{directory / CONFIG} has no encoder.module._target_ to rebuild the "
            "encoder from"
        )
    target = node["_target_"]
    try:
        module = instantiate(node)
        check_encoder(module)
    except (InstantiationException, ImportError, TypeError, ValueError) as error:
        raise DetectorError(
            f"the encoder {target} of {directory / CONFIG} cannot be rebuilt "
            f"({error}); install the package that provides it, in the version "
            "the run used"
        ) from None

    try:
        state = torch.load(directory / ENCODER, map_location="cpu", weights_only=True)
        module.load_state_dict(state)
    except (OSError, RuntimeError, EOFError, ValueError) as error:
        raise DetectorError(
            f"the weights {directory / ENCODER} do not load into {target}: {error}"
        ) from None
    return module.cpu().eval()


def _load_classifier(directory: Path, metadata: dict[str, Any]) -> Any:
    path = directory / CLASSIFIER
    data = path.read_bytes()
    if _sha256(data) != metadata["classifier"].get("sha256"):
        log.warning(
            "%s differs from the classifier that %s records: it was replaced, or "
            "the run stopped between writing the two; the iteration and labels "
            "used logged here may be out of date",
            path,
            METADATA,
        )
    try:
        estimator = joblib.load(io.BytesIO(data))
    except (ImportError, AttributeError, EOFError, ValueError) as error:
        raise DetectorError(
            f"{path} cannot be loaded ({type(error).__name__}: {error}); install "
            "the packages that the run used, which "
            f"{directory / METADATA} lists under 'versions'"
        ) from None
    if not callable(getattr(estimator, "predict_proba", None)):
        raise DetectorError(
            f"{path} contains a {type(estimator).__qualname__}, not a classifier "
            "with predict_proba"
        )
    return estimator
