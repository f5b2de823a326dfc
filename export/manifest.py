"""The writing side of manifest.json: what goes in it and how it is keyed.

The schema and the reader live in ``runtime.manifest`` (torch-free); this
module gathers what only the exporter knows: graph interfaces read back from
the written ONNX files, library versions, and the export key that decides
whether an existing export can be reused.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import onnx

from ..runtime.manifest import (
    MANIFEST_FILE,
    GraphSpec,
    Manifest,
    ParityReport,
    SourceModel,
    SpecialTokens,
    TensorRTInfo,
    TensorSpec,
    sha256_file,
)
from .source import SourceModelInfo

# Bump when the graphs this code writes change meaning, so old exports are redone.
EXPORTER_REVISION = 1

_VERSIONED_PACKAGES = ("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "onnxruntime-gpu", "numpy")


def collect_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "vlm-sudoku-exporter": str(EXPORTER_REVISION)}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def export_key(source: SourceModelInfo, options: dict[str, Any]) -> str:
    """Hash of everything that determines the export's content: weights, config, options, exporter revision.

    Library versions are recorded but not keyed: a patch release of onnxruntime
    should not force a multi-minute re-export.
    """
    body = {
        "weights": source.weights_sha256,
        "config": source.config_sha256,
        "options": options,
        "exporter": EXPORTER_REVISION,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


_ELEM_TO_NUMPY = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.BFLOAT16: "bfloat16",
    onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.BOOL: "bool",
}


def _tensor_specs(values: Any) -> tuple[TensorSpec, ...]:
    specs = []
    for v in values:
        tt = v.type.tensor_type
        shape = tuple(d.dim_param if d.dim_param else int(d.dim_value) for d in tt.shape.dim)
        specs.append(TensorSpec(name=v.name, dtype=_ELEM_TO_NUMPY.get(tt.elem_type, str(tt.elem_type)), shape=shape))
    return tuple(specs)


def graph_spec(export_dir: Path, name: str, precision: str, rel_file: str, external_data: list[str]) -> GraphSpec:
    """Read a written graph's interface (names, dtypes, symbolic shapes) back from the file."""
    path = export_dir / rel_file
    model = onnx.load(str(path), load_external_data=False)
    parent = Path(rel_file).parent
    return GraphSpec(
        name=name,
        precision=precision,
        file=rel_file,
        external_data=tuple(str(parent / e) for e in external_data),
        inputs=_tensor_specs(model.graph.input),
        outputs=_tensor_specs(model.graph.output),
        sha256=sha256_file(path),
    )


def external_data_files(path: Path) -> list[str]:
    """Side files holding a graph's weights (relative to the graph's folder)."""
    model = onnx.load(str(path), load_external_data=False)
    files = set()
    for init in model.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            for entry in init.external_data:
                if entry.key == "location":
                    files.add(entry.value)
    return sorted(files)


def build_manifest(
    source: SourceModelInfo,
    key: str,
    options: dict[str, Any],
    graphs: list[GraphSpec],
    parity: list[ParityReport],
    tensorrt: TensorRTInfo | None,
    stats: dict[str, float],
) -> Manifest:
    cfg, tok = source.cfg, source.tokens
    return Manifest(
        architecture=cfg.model_type,
        hf_architecture=source.hf_architecture,
        source=SourceModel(
            path=str(source.path),
            weights_sha256=source.weights_sha256,
            config_sha256=source.config_sha256,
            weight_files=tuple(p.name for p in source.weight_files),
        ),
        export_key=key,
        options=options,
        graphs=tuple(graphs),
        special_tokens=SpecialTokens(
            image_token_id=cfg.image_token_id,
            video_token_id=cfg.video_token_id,
            vision_start_token_id=cfg.vision_start_token_id,
            vision_end_token_id=cfg.vision_end_token_id,
            bos_token_id=tok.bos_token_id,
            pad_token_id=tok.pad_token_id,
            eos_token_ids=tok.eos_token_ids,
        ),
        image_policy=source.image_policy,
        versions=collect_versions(),
        parity=tuple(parity),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tensorrt=tensorrt,
        stats=stats,
    )


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    path = folder / MANIFEST_FILE
    path.write_text(json.dumps(manifest.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path
