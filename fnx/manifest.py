"""The manifest: the one contract between stages, a JSON beside each artifact (`X.tflite` -> `X.json`).

It says what the artifact is (model, weights, format, precision), how to feed it (`inputs`, `preprocessing`), what
comes out (`outputs`, `labels`), what was proven about it (`calibration`, `parity`) and, for a file compiled for an
NPU, from what and with which estimates (`compilation`). Every stage writes and reads it through these types.
Torch-free: the runtime reads it on the device.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fnx.compilation import Compilation
from fnx.errors import FnxError
from fnx.fileio import write_text_atomic
from fnx.formats import artifact_digest, detect_format, get_file_format
from fnx.manifest_forms import Int8FormChoice
from fnx.manifest_tensors import Quantization, TensorSpec
from fnx.parity import OutputParity, ParityReport
from fnx.records import Record, RecordError

SCHEMA = "fnx.manifest/2"
OLD_SCHEMAS = {"fnx.manifest/1": "fnx 0.1"}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_CROP_PCT = 0.9


@dataclass(frozen=True)
class Preprocessing(Record):
    """How an image becomes the model's input: resize the short side, center-crop, scale, normalize.

    The defaults are timm's FasterNet test transform at 224 (the official evaluation transform).
    """

    resize_short: int = 248
    crop: int = 224
    crop_pct: float = DEFAULT_CROP_PCT
    interpolation: str = "bicubic"
    scale: float = 1 / 255
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    channel_order: str = "RGB"

    @classmethod
    def for_size(cls, img_size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD, crop_pct: float = DEFAULT_CROP_PCT,
                 interpolation: str = "bicubic") -> "Preprocessing":
        """Return the transform for img_size: resize to floor(size / crop_pct), center-crop size (timm's rule)."""
        return cls(resize_short=int(math.floor(img_size / crop_pct)), crop=int(img_size), crop_pct=crop_pct,
                   interpolation=interpolation, mean=tuple(mean), std=tuple(std))

    def describe(self) -> str:
        """Return the transform in a few words, e.g. "resize 248 bicubic, crop 224, ImageNet mean/std"."""
        norm = "ImageNet mean/std" if (self.mean, self.std) == (IMAGENET_MEAN, IMAGENET_STD) else \
            f"mean {self.mean}, std {self.std}"
        return f"resize {self.resize_short} {self.interpolation}, crop {self.crop}, {norm}"

    def resized(self, img_size: int) -> "Preprocessing":
        """Return the same transform (mean, std, crop_pct, interpolation) for another input size."""
        return replace(Preprocessing.for_size(img_size, self.mean, self.std, self.crop_pct, self.interpolation),
                       scale=self.scale, channel_order=self.channel_order)


@dataclass
class ArtifactInfo(Record):
    """The file: format, precision and, once written, its name, sha256 and size."""

    format: str
    precision: str
    file: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    quantized_from: dict[str, str] | None = None  # {"file", "sha256"} for `fnx quantize`


@dataclass
class ModelConfig(Record):
    """The PyTorch model the artifact was made from."""

    name: str
    variant: dict[str, Any]
    num_classes: int
    in_chans: int
    img_size: int
    params: int
    flops: int
    features_only: bool = False
    bn_folded: bool = True
    trained_img_size: int | None = None  # the size the weights were trained at, where known (img_size may differ)


@dataclass
class WeightsInfo(Record):
    """Where the weights came from: kind (path | url | official | hf-hub | random), and the file's sha256.

    For Hugging Face Hub weights `url` is `hf-hub:ORG/REPO@COMMIT` (the exact revision used).
    """

    kind: str
    path: str | None = None
    url: str | None = None
    sha256: str | None = None


@dataclass
class LayerError(Record):
    """One layer's int8 error on the probe images: relative L2 error of its output and its SNR."""

    layer: str
    rel_error: float
    snr_db: float
    node: str | None = None


@dataclass
class FallbackCost(Record):
    """Latency (1 thread) of the all-int8 model and of the guarded one with layers back in float."""

    all_int8_ms: float
    guarded_ms: float
    slowdown: float


@dataclass
class Int8Report(Record):
    """int8 against fp32 on the held-out images, with the guard's verdict."""

    held_out: int
    cosine_min: float
    top1_agreement: float | None
    max_abs: float
    failures: list[str] = field(default_factory=list)
    passed: bool = True
    guard_steps: int = 0
    fp32_top1: float | None = None
    int8_top1: float | None = None
    top1_drop_points: float | None = None
    float_fallback_cost: FallbackCost | None = None
    layer_errors: list[LayerError] = field(default_factory=list)
    float_ops: dict[str, int] = field(default_factory=dict)
    per_output: list[OutputParity] = field(default_factory=list)  # several outputs (backbone features): each one's


@dataclass
class GuardBounds(Record):
    """The accuracy guard's bounds, as asked for (`--min-cosine`, `--max-top1-drop`)."""

    min_cosine: float
    max_top1_drop: float | None = None


@dataclass
class Calibration(Record):
    """How an int8 artifact was calibrated and what its held-out report said."""

    source: str
    images_found: int
    calibration_images: int
    held_out_images: int
    method: str
    io: str
    scheme: str
    guard: GuardBounds
    report: Int8Report
    kept_float: list[str] = field(default_factory=list)
    skipped: int = 0
    skipped_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    forms: Int8FormChoice | None = None  # how its int8 form was chosen (fnx.manifest_forms), where it had several


@dataclass
class Manifest(Record):
    """Everything the runtime and the user need to know about one artifact."""

    artifact: ArtifactInfo
    model: ModelConfig
    weights: WeightsInfo
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    preprocessing: Preprocessing
    labels: list[str] | None = None
    class_ids: list[str] | None = None  # stable IDs per class (ImageNet's WordNet IDs), matched by `fnx eval`
    calibration: Calibration | None = None
    parity: ParityReport | None = None
    converter: dict[str, str] = field(default_factory=dict)
    compilation: Compilation | None = None  # compiled for an NPU from a verified file: its parity is that file's
    schema: str = SCHEMA

    @property
    def input(self) -> TensorSpec:
        """The image input (FasterNet artifacts have exactly one)."""
        return self.inputs[0]

    @classmethod
    def parse(cls, data: Any, where: str) -> "Manifest":
        """Return the manifest in data, refusing other schema versions and damaged fields with what to do."""
        if not isinstance(data, dict) or not isinstance(data.get("schema"), str):
            raise FnxError(f"{where} is not an fnx manifest (no 'schema' field); move it aside or re-export the model")
        if (schema := data["schema"]) in OLD_SCHEMAS:
            raise FnxError(f"{where} was written by {OLD_SCHEMAS[schema]} ({schema}); this fnx reads {SCHEMA}: "
                           f"re-export the model with this fnx (fnx export ...)")
        if schema != SCHEMA:
            raise FnxError(f"{where} has manifest schema {schema!r}, which this fnx does not know (it reads {SCHEMA}): "
                           f"upgrade fnx (pip install -U fnx) or re-export the model")
        try:
            return cls.from_dict(data, "manifest")
        except RecordError as e:
            raise FnxError(f"{where} is damaged: {e}; re-export the model or restore the file") from e


def manifest_path(artifact: str | Path) -> Path:
    """Return the manifest path for an artifact (same name, `.json`)."""
    return Path(artifact).with_suffix(".json")


def read_manifest(artifact: str | Path) -> Manifest | None:
    """Return the manifest beside artifact, else the copy embedded in it (where its format embeds one), else None."""
    path = manifest_path(artifact)
    if not path.is_file():
        return read_embedded_manifest(artifact)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FnxError(f"manifest {path} is not valid JSON ({e}); re-export the model or delete the file") from e
    return Manifest.parse(data, str(path))


def read_embedded_manifest(artifact: str | Path) -> Manifest | None:
    """Return the manifest stored inside the artifact (where its format embeds one), None if it holds none."""
    artifact = Path(artifact)
    try:
        read = detect_format(artifact).read_embedded
    except FnxError:
        return None  # a missing or foreign file: whoever opens it says what is wrong
    text = read(artifact) if read is not None else None
    return None if text is None else parse_embedded(text, artifact)


def parse_embedded(text: str, artifact: Path) -> Manifest:
    """Return the manifest in an artifact's embedded JSON text; FnxError saying what to do if it is damaged."""
    where = f"the manifest embedded in {artifact.name}"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise FnxError(f"{where} is not valid JSON ({e}); re-export the model") from e
    return Manifest.parse(data, where)


def write_manifest(artifact: str | Path, manifest: Manifest) -> Path:
    """Write manifest beside artifact atomically; returns its path.

    What is written must read back equal (`Manifest.from_dict(d).to_dict() == d`): a field that
    would not survive the round trip is a bug caught here, before any file exists.
    """
    data = json.loads(manifest_json(manifest))
    if Manifest.parse(data, "the manifest being written").to_dict() != data:
        raise FnxError("internal error: the manifest does not read back as written; please report this fnx bug")
    return write_text_atomic(manifest_path(artifact), manifest_json(manifest, indent=2) + "\n")


def manifest_json(manifest: Manifest, indent: int | None = None) -> str:
    """Return the manifest as JSON text (what `write_manifest` and embedded copies store)."""
    return json.dumps(manifest.to_dict(), indent=indent, sort_keys=indent is None)


def finish_artifact(manifest: Manifest, tmp: Path, final: Path) -> Manifest:
    """Seal a verified artifact written at tmp (to be renamed to final): embed the manifest where the format
    can hold it, record the file's name, sha256 and size, and write the manifest beside final."""
    manifest.artifact.file = final.name
    embed = get_file_format(manifest.artifact.format).embed
    if embed is not None:
        embed(tmp, manifest_json(manifest))
    manifest.artifact.sha256, manifest.artifact.size_bytes = artifact_digest(tmp)
    write_manifest(final, manifest)
    return manifest
