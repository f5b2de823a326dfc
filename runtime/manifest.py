"""manifest.json of an export folder: schema, reading, validation and identity checks.

The exporter writes one manifest per export folder, last, after every graph is
in place; a folder without a readable manifest is therefore not a complete
export. This module is the reading side and stays torch-free (json and
hashlib only) so the runtime can answer "which graphs, which names and dtypes,
made from which weights, for which GPU" without the export dependencies.
The writing side (versions, parity, hashing during export) lives in
``vlm_sudoku.export.manifest``.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..solver.errors import InputError
from . import io_names
from .model_config import read_json_object

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
FORMAT = "vlm-sudoku-export"


class ManifestError(InputError):
    """The manifest is missing, unreadable or does not follow the schema."""


class ExportMismatchError(InputError):
    """The export folder was made from another model than the one asked for."""


class EngineMismatchError(InputError):
    """The TensorRT engines of an export were built for another GPU or TensorRT version."""


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: name, ONNX element type (numpy spelling) and symbolic shape."""

    name: str
    dtype: str  # "float32", "float16", "int64", ...
    shape: tuple[int | str, ...]

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TensorSpec":
        return cls(name=str(raw["name"]), dtype=str(raw["dtype"]), shape=tuple(raw["shape"]))


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX file of the export (a graph at a precision)."""

    name: str  # io_names.VISION_ENCODER / EMBED_TOKENS / DECODER
    precision: str  # "fp32" | "fp16"
    file: str  # relative to the export folder, e.g. onnx/decoder_model_merged_fp16.onnx
    external_data: tuple[str, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    sha256: str = ""  # of the .onnx file itself (not its external data)

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "GraphSpec":
        return cls(
            name=str(raw["name"]),
            precision=str(raw["precision"]),
            file=str(raw["file"]),
            external_data=tuple(raw.get("external_data", ())),
            inputs=tuple(TensorSpec.from_dict(t) for t in raw["inputs"]),
            outputs=tuple(TensorSpec.from_dict(t) for t in raw["outputs"]),
            sha256=str(raw.get("sha256", "")),
        )


@dataclass(frozen=True)
class ImagePolicy:
    """How images are sized before the vision encoder (Qwen2-VL ``smart_resize`` settings)."""

    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 1280
    patch_size: int = 14
    temporal_patch_size: int = 2
    merge_size: int = 2
    image_mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    image_std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size

    @classmethod
    def from_preprocessor_config(cls, raw: dict[str, Any] | None) -> "ImagePolicy":
        """Read preprocessor_config.json; ``min_pixels``/``max_pixels`` win over ``size`` (as in transformers 4.57)."""
        if not raw:
            return cls()
        d = cls()
        size = raw.get("size") or {}
        return cls(
            min_pixels=int(raw.get("min_pixels") or size.get("shortest_edge") or d.min_pixels),
            max_pixels=int(raw.get("max_pixels") or size.get("longest_edge") or d.max_pixels),
            patch_size=int(raw.get("patch_size", d.patch_size)),
            temporal_patch_size=int(raw.get("temporal_patch_size", d.temporal_patch_size)),
            merge_size=int(raw.get("merge_size", d.merge_size)),
            image_mean=tuple(float(x) for x in raw.get("image_mean", d.image_mean)),  # type: ignore[arg-type]
            image_std=tuple(float(x) for x in raw.get("image_std", d.image_std)),  # type: ignore[arg-type]
        )

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "ImagePolicy":
        raw = dict(raw)
        for key in ("image_mean", "image_std"):
            if key in raw:
                raw[key] = tuple(raw[key])
        return cls(**raw)


@dataclass(frozen=True)
class SpecialTokens:
    image_token_id: int
    video_token_id: int
    vision_start_token_id: int
    vision_end_token_id: int
    bos_token_id: int | None
    pad_token_id: int | None
    eos_token_ids: tuple[int, ...]

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "SpecialTokens":
        raw = dict(raw)
        raw["eos_token_ids"] = tuple(raw.get("eos_token_ids", ()))
        return cls(**raw)


@dataclass(frozen=True)
class ParityReport:
    """PyTorch fp32 against the ONNX graphs of one precision, measured at export time."""

    precision: str
    max_new_tokens: int
    tokens_equal: int  # length of the common greedy prefix
    agreement: float  # fraction of positions with the same token
    first_divergence: int | None  # index of the first differing token, None if identical
    prefill_max_abs_diff: float  # max |logits_onnx - logits_torch| over the prompt
    image_grids: tuple[tuple[int, int, int], ...]
    top2_margin_at_divergence: float | None = None  # PyTorch's top-1 minus top-2 logit there
    passed: bool = True
    tolerance: float = 1e-3

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "ParityReport":
        raw = dict(raw)
        raw["image_grids"] = tuple(tuple(g) for g in raw.get("image_grids", ()))
        return cls(**raw)


@dataclass(frozen=True)
class TensorRTInfo:
    """Where the TensorRT engines are and what they were built for."""

    gpu_name: str
    compute_capability: str  # "9.0"
    tensorrt_version: str
    onnxruntime_version: str
    precision: str
    cache_dir: str  # relative to the export folder
    ep_context_files: dict[str, str] = field(default_factory=dict)  # graph -> EP-context .onnx
    profiles: dict[str, dict[str, dict[str, list[int]]]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "TensorRTInfo":
        return cls(**raw)


@dataclass(frozen=True)
class SourceModel:
    path: str
    weights_sha256: str
    config_sha256: str
    weight_files: tuple[str, ...]

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "SourceModel":
        raw = dict(raw)
        raw["weight_files"] = tuple(raw.get("weight_files", ()))
        return cls(**raw)


@dataclass(frozen=True)
class Manifest:
    architecture: str  # model_type: qwen2_vl | qwen2_5_vl
    hf_architecture: str  # e.g. Qwen2VLForConditionalGeneration
    source: SourceModel
    export_key: str  # hash of the weights and the export options: equal key = reusable export
    options: dict[str, Any]
    graphs: tuple[GraphSpec, ...]
    special_tokens: SpecialTokens
    image_policy: ImagePolicy
    versions: dict[str, str]
    parity: tuple[ParityReport, ...]
    created_at: str
    tensorrt: TensorRTInfo | None = None
    stats: dict[str, float] = field(default_factory=dict)  # export time, peak memory
    schema_version: int = SCHEMA_VERSION
    format: str = FORMAT

    @property
    def precisions(self) -> list[str]:
        return sorted({g.precision for g in self.graphs}, key=list(io_names.PRECISION_SUFFIX).index)

    def graph(self, name: str, precision: str = "fp32") -> GraphSpec:
        for g in self.graphs:
            if g.name == name and g.precision == precision:
                return g
        have = ", ".join(f"{g.name}/{g.precision}" for g in self.graphs)
        raise ManifestError(f"this export has no {name} graph at {precision} (it has: {have})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Manifest":
        if raw.get("format") != FORMAT:
            raise ManifestError(f"not a {FORMAT} manifest (format={raw.get('format')!r})")
        if raw.get("schema_version") != SCHEMA_VERSION:
            raise ManifestError(
                f"manifest schema version {raw.get('schema_version')!r} is not supported (expected {SCHEMA_VERSION}); "
                "re-run vlm-export"
            )
        try:
            trt = raw.get("tensorrt")
            return cls(
                architecture=str(raw["architecture"]),
                hf_architecture=str(raw["hf_architecture"]),
                source=SourceModel.from_dict(raw["source"]),
                export_key=str(raw["export_key"]),
                options=dict(raw["options"]),
                graphs=tuple(GraphSpec.from_dict(g) for g in raw["graphs"]),
                special_tokens=SpecialTokens.from_dict(raw["special_tokens"]),
                image_policy=ImagePolicy.from_dict(raw["image_policy"]),
                versions=dict(raw["versions"]),
                parity=tuple(ParityReport.from_dict(p) for p in raw.get("parity", ())),
                created_at=str(raw["created_at"]),
                tensorrt=None if trt is None else TensorRTInfo.from_dict(trt),
                stats=dict(raw.get("stats", {})),
                schema_version=int(raw["schema_version"]),
                format=str(raw["format"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"malformed manifest: {type(exc).__name__}: {exc}") from None

    @classmethod
    def load(cls, folder: str | Path) -> "Manifest":
        """Read and validate ``folder/manifest.json``, and check that its graph files exist."""
        folder = Path(folder)
        raw = read_json_object(folder / MANIFEST_FILE, "manifest", ManifestError,
                               missing=f"{folder}: no {MANIFEST_FILE}, so this is not a complete vlm-export folder")
        manifest = cls.from_dict(raw)
        missing = [f for g in manifest.graphs for f in (g.file, *g.external_data) if not (folder / f).is_file()]
        if missing:
            raise ManifestError(f"{folder}: export is incomplete, missing {', '.join(missing)}")
        return manifest

    def check_source(self, weights_sha256: str, what: str = "the requested model") -> None:
        """Raise ExportMismatchError unless this export was made from weights with this hash."""
        if weights_sha256 != self.source.weights_sha256:
            raise ExportMismatchError(
                f"this export was made from other weights than {what} "
                f"(export: {self.source.weights_sha256[:12]} from {self.source.path}, "
                f"given: {weights_sha256[:12]})"
            )

    def check_engine(self, gpu_name: str, compute_capability: str, tensorrt_version: str) -> None:
        """Refuse TensorRT engines built for another GPU, compute capability or TensorRT version.

        A serialized TensorRT engine is only valid on the GPU model and TensorRT
        version that built it; loading it elsewhere fails deep inside TensorRT or,
        worse, silently rebuilds. Compare first and say what differs.
        """
        trt = self.tensorrt
        if trt is None:
            raise EngineMismatchError("this export has no TensorRT engines: re-run vlm-export with --tensorrt")
        diffs = []
        if trt.gpu_name != gpu_name:
            diffs.append(f"GPU {trt.gpu_name!r} (this machine: {gpu_name!r})")
        if trt.compute_capability != compute_capability:
            diffs.append(f"compute capability {trt.compute_capability} (this machine: {compute_capability})")
        if trt.tensorrt_version != tensorrt_version:
            diffs.append(f"TensorRT {trt.tensorrt_version} (this machine: {tensorrt_version})")
        if diffs:
            raise EngineMismatchError(
                "the TensorRT engines of this export were built for " + ", ".join(diffs)
                + ": re-run vlm-export --tensorrt on this machine"
            )


# --- hashing of a source model folder (shared by exporter and runtime) ---------------------------

WEIGHT_PATTERNS = ("*.safetensors",)


def weight_files(model_dir: str | Path) -> list[Path]:
    """The safetensors files of a model folder, sorted by name."""
    folder = Path(model_dir)
    return sorted(p for pat in WEIGHT_PATTERNS for p in folder.glob(pat) if p.is_file())


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def weights_sha256(model_dir: str | Path) -> str:
    """One hash over every safetensors file (name and content), the identity of a model's weights."""
    h = hashlib.sha256()
    for p in weight_files(model_dir):
        h.update(p.name.encode() + b"\0")
        h.update(bytes.fromhex(sha256_file(p)))
    return h.hexdigest()
