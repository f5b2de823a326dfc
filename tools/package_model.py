"""Package a trained model for shipping: its Hugging Face folder and ONNX graphs that share its weights.

    python -m vlm_sudoku.tools.package_model HF_DIR OUT_DIR

The embedded default model must fit in 24 MB with both its PyTorch weights
(the Hugging Face folder users and tests load with transformers) and its ONNX
export (what the torch-free runtime runs). Stored twice, a 6 M-parameter model
would already pass that. So the graphs carry no weights of their own: every
large initializer becomes an external-data reference into ``hf/model.safetensors``
(its fp16 bytes, at the tensor's offset), followed by a Cast to fp32 and, where
the exporter had transposed a weight, a Transpose. onnxruntime folds those
nodes into fp32 initializers when it loads the session, so the CPU computes in
fp32 with exactly the values PyTorch gets from the same fp16 file: parity is
kept, and the weights exist once on disk.

Layout (onnxruntime only reads external data below the graph's own folder, so
the graphs sit at the top and the Hugging Face folder beneath them)::

    OUT_DIR/manifest.json, config.json, tokenizer files ...   (what the runtime reads)
    OUT_DIR/vision_encoder.onnx, embed_tokens.onnx, decoder_model_merged.onnx
    OUT_DIR/hf/   config.json, model.safetensors (fp16), tokenizer, processor, README.md (model card)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from ..runtime import io_names
from ..runtime.manifest import MANIFEST_FILE

HF_SUBDIR = "hf"
WEIGHTS = "model.safetensors"
MIN_SHARED_ELEMENTS = 1024  # smaller initializers stay inline


@dataclass(frozen=True)
class StoredTensor:
    key: str
    shape: tuple[int, ...]
    offset: int  # from the start of the file
    length: int


def safetensors_index(path: Path) -> dict[str, StoredTensor]:
    """Where each tensor's bytes lie in a safetensors file (header: u64 length, then JSON)."""
    with path.open("rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    out = {}
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        if meta["dtype"] != "F16":
            raise click.ClickException(f"{path}: tensor {key} is {meta['dtype']}, expected F16 weights")
        begin, end = meta["data_offsets"]
        out[key] = StoredTensor(key, tuple(meta["shape"]), 8 + n + begin, end - begin)
    return out


def _digest(a: np.ndarray) -> bytes:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).digest()


def _stacked_parts(a: np.ndarray, lookup: dict[bytes, tuple[str, bool]], sizes: set[int]) -> list[str] | None:
    """The stored tensors whose rows, stacked, make ``a`` (1-D) or ``a.T`` (2-D): the fused decoder's q/k/v
    projection is the three matrices (and biases) stacked, which the safetensors file holds separately."""
    rows = a if a.ndim == 1 else a.T
    keys, at = [], 0
    while at < len(rows):
        for size in sorted(sizes, reverse=True):
            part = np.ascontiguousarray(rows[at:at + size])
            hit = lookup.get(_digest(part.astype(np.float16))) if len(part) == size else None
            if hit is not None and not hit[1]:
                keys.append(hit[0])
                at += size
                break
        else:
            return None
    return keys if len(keys) > 1 else None


def share_weights(graph_path: Path, out_path: Path, weights: Path, location: str) -> dict[str, int]:
    """Rewrite one graph so its large initializers read ``weights``; returns byte counts."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    stored = safetensors_index(weights)
    arrays = load_file(str(weights))
    lookup: dict[bytes, tuple[str, bool]] = {}
    sizes = {arr.shape[0] for arr in arrays.values() if arr.ndim in (1, 2)}
    for key, arr in arrays.items():
        lookup.setdefault(_digest(arr), (key, False))
        if arr.ndim == 2:
            lookup.setdefault(_digest(arr.T), (key, True))
    model = onnx.load(str(graph_path), load_external_data=True)
    graph = model.graph
    keep, added_nodes, shared, inline = [], [], 0, 0
    for init in graph.initializer:
        a = numpy_helper.to_array(init)
        half = a.astype(np.float16) if a.dtype == np.float32 else None
        hit, parts = None, None
        if half is not None and a.size >= MIN_SHARED_ELEMENTS and np.array_equal(half.astype(np.float32), a):
            hit = lookup.get(_digest(half))
            if hit is None and a.ndim in (1, 2):
                parts = _stacked_parts(a, lookup, sizes)
        if hit is None and parts is None:
            keep.append(init)
            inline += a.nbytes
            continue
        if parts is not None:  # stacked stored tensors: Concat (rows) of the parts, then as a single tensor
            key, transposed = parts[0], a.ndim == 2
        else:
            key, transposed = hit
        sources = []
        for n, part in enumerate(parts or [key]):
            st = stored[part]
            ext = TensorProto()
            ext.name = f"{init.name}::fp16" + (f"::{n}" if parts else "")
            ext.data_type = TensorProto.FLOAT16
            ext.dims.extend(st.shape if (transposed or parts) else a.shape)
            ext.data_location = TensorProto.EXTERNAL
            for k, v in (("location", location), ("offset", str(st.offset)), ("length", str(st.length))):
                entry = ext.external_data.add()
                entry.key, entry.value = k, v
            keep.append(ext)
            sources.append(ext.name)
        if parts:
            added_nodes.append(helper.make_node("Concat", sources, [f"{init.name}::fp16"], axis=0,
                                                name=f"/weights/{init.name}/stack"))
        cast_out = f"{init.name}::fp32" if transposed else init.name
        added_nodes.append(helper.make_node("Cast", [f"{init.name}::fp16"], [cast_out], to=TensorProto.FLOAT,
                                            name=f"/weights/{init.name}/cast"))
        if transposed:
            added_nodes.append(helper.make_node("Transpose", [cast_out], [init.name], perm=[1, 0],
                                                name=f"/weights/{init.name}/transpose"))
        shared += a.nbytes // 2
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(added_nodes + nodes)
    onnx.save(model, str(out_path))
    return {"shared_fp16_bytes": shared, "inline_bytes": inline}


def package(hf_dir: Path, out: Path, check_tokens: int = 16) -> dict[str, object]:
    """Export ``hf_dir`` and lay it out as described in the module docstring; returns a summary."""
    from ..export.exporter import ExportOptions, export_model
    from ..runtime.manifest import Manifest

    if out.exists():
        raise click.ClickException(f"{out} exists; remove it first (nothing is overwritten)")
    tmp = Path(tempfile.mkdtemp(prefix="vlm-package-", dir=out.parent))
    try:
        export = tmp / "export"
        export_model(hf_dir, export, ExportOptions(precisions=("fp32",), fused_decoder=True, check_tokens=check_tokens))
        staged = tmp / "package"
        shutil.copytree(hf_dir, staged / HF_SUBDIR)
        for f in export.iterdir():
            if f.is_file() and f.name != MANIFEST_FILE:
                shutil.copy2(f, staged / f.name)
        weights = staged / HF_SUBDIR / WEIGHTS
        sizes = {}
        raw = json.loads((export / MANIFEST_FILE).read_text())
        for g in raw["graphs"]:
            target = Path(g["file"]).name
            sizes[g["name"]] = share_weights(export / g["file"], staged / target, weights, f"{HF_SUBDIR}/{WEIGHTS}")
            g["file"], g["external_data"] = target, [f"{HF_SUBDIR}/{WEIGHTS}"]
            g["sha256"] = hashlib.sha256((staged / target).read_bytes()).hexdigest()
        raw["options"]["weights"] = f"fp16, shared with {HF_SUBDIR}/{WEIGHTS}; cast to fp32 when the session loads"
        (staged / MANIFEST_FILE).write_text(json.dumps(raw, indent=2) + "\n")
        Manifest.load(staged)  # the runtime's own validation
        _same_outputs(export, staged)
        staged.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {"graphs": sizes, "total_bytes": total}


def _same_outputs(export: Path, packaged: Path) -> None:
    """The packaged graphs compute what the plain export computes (same fp32 weights, same ops)."""
    from PIL import Image

    from ..runtime.engine import Engine
    from ..runtime.prompts import shared_prompt

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (200, 260, 3), dtype=np.uint8))
    results = []
    for folder in (export, packaged):
        engine = Engine(folder, provider="cpu")
        engine.stop_ids = frozenset()
        enc = engine.encode_image(image)
        prompt = shared_prompt(engine.tokenizer, [enc.num_tokens])
        results.append((enc.embeds, engine.generate(prompt.full("digits"), images=[enc], max_new_tokens=12).tokens))
    (e1, t1), (e2, t2) = results
    if t1 != t2 or not np.allclose(e1, e2, atol=1e-5, rtol=0):
        raise click.ClickException("the packaged graphs do not reproduce the export's outputs")


@click.command()
@click.argument("hf_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--check-tokens", default=16, show_default=True, help="Greedy tokens compared with PyTorch at export.")
def main(hf_dir: Path, out_dir: Path, check_tokens: int) -> None:
    """Package HF_DIR (fp16 safetensors) with weight-sharing ONNX graphs into OUT_DIR."""
    summary = package(hf_dir, out_dir, check_tokens)
    click.echo(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
