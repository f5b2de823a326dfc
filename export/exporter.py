"""Orchestration of one export: checks, reuse, graphs, fp16, parity, engines, manifest.

Guarantees:

- **Reuse.** The export key hashes the source weights, config.json and the
  options. An existing folder whose manifest has the same key is returned as
  is; a different key re-exports.
- **No clobbering.** A folder holding another model's export (different
  weights hash), or anything that is not an export, is only replaced with
  ``force=True`` (which also re-exports a reusable folder).
- **Atomic.** Everything is written to a hidden sibling temporary folder
  (same filesystem), the manifest last, then renamed into place. A failure or
  an interrupt leaves at most a ``.NAME.partial-*`` folder, never a folder that
  looks like a complete export.
"""

from __future__ import annotations

import errno
import gc
import os
import resource
import shutil
import sys
import time
import uuid
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from ..runtime import io_names
from ..runtime.manifest import Manifest, ManifestError, ParityReport, TensorRTInfo
from .errors import ExportError, ModelFolderError, NoDiskSpaceError, OutputFolderInUseError
from .manifest import build_manifest, export_key, external_data_files, graph_spec, write_manifest
from .source import SourceModelInfo, inspect_model_dir

PRECISIONS = ("fp32", "fp16", "int4")
FLOAT_PRECISIONS = ("fp32", "fp16")  # int4 is the fused decoder only; the other graphs stay float
DEFAULT_OPSET = 18
Log = Callable[[str], None]


@dataclass(frozen=True)
class ExportOptions:
    """What to export. Every field except ``check_tokens`` changes the graphs and is part of the export key."""

    precisions: tuple[str, ...] = ("fp32",)
    opset: int = DEFAULT_OPSET
    device: str = "cpu"
    tensorrt: bool = False
    fused_decoder: bool = False  # also write decoder_gqa (export/gqa_decoder.py) at each precision
    fused_vision: bool = False  # also write vision_fused (export/vision_fused.py) at each float precision
    check_tokens: int = 16  # greedy tokens compared with PyTorch at export time; 0 skips the check

    def __post_init__(self) -> None:
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad or not self.precisions:
            raise ValueError(f"precision must be among {', '.join(PRECISIONS)}, got {list(self.precisions)}")
        if "int4" in self.precisions and not (self.fused_decoder and set(self.precisions) & set(FLOAT_PRECISIONS)):
            raise ValueError("int4 quantizes the fused decoder only: give --fused-decoder and a float precision "
                             "(fp32 or fp16) for the other graphs, e.g. --precision fp16 --precision int4")

    def key_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["precisions"] = sorted(set(self.precisions), key=PRECISIONS.index)
        d.pop("check_tokens")
        if not d["fused_vision"]:  # absent when off: exports made before the option keep their key (and reuse)
            d.pop("fused_vision")
        return d


@dataclass
class ExportResult:
    export_dir: Path
    manifest: Manifest
    reused: bool
    seconds: float = 0.0
    peak_rss_mb: float = 0.0


def export_model(
    model_dir: str | Path,
    export_dir: str | Path,
    options: ExportOptions = ExportOptions(),
    *,
    force: bool = False,
    log: Log | None = None,
) -> ExportResult:
    """Export ``model_dir`` into ``export_dir`` (see the module docstring for reuse and safety rules)."""
    say = log or (lambda _msg: None)
    t0 = time.monotonic()
    source = inspect_model_dir(model_dir)
    if options.fused_vision:
        _check_fused_vision(source)  # before minutes of export, not after
    out = Path(export_dir).expanduser().absolute()
    key = export_key(source, options.key_dict())

    existing = _existing_manifest(out)
    if existing is not None and existing.export_key == key and not force:
        say(f"reusing the export in {out} (same weights and options)")
        return ExportResult(out, existing, reused=True, seconds=time.monotonic() - t0)
    _check_can_replace(out, existing, source, force)

    if options.tensorrt:
        from .tensorrt import detect_tensorrt

        detect_tensorrt()  # fail before minutes of export, not after

    out.parent.mkdir(parents=True, exist_ok=True)
    _check_disk_space(out.parent, _estimate_bytes(source, options))
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        manifest = _export_into(tmp, source, options, key, say, t0)
        _normalize_permissions(tmp)
        _swap_into_place(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno == errno.ENOSPC:
            raise NoDiskSpaceError(f"no space left on the device while writing {out}") from None
        raise ExportError(f"could not write the export to {out}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"export written to {out}")
    return ExportResult(
        out, manifest, reused=False, seconds=manifest.stats.get("seconds", 0.0),
        peak_rss_mb=manifest.stats.get("peak_rss_mb", 0.0),
    )


def _export_into(
    tmp: Path, source: SourceModelInfo, options: ExportOptions, key: str, say: Log, t0: float
) -> Manifest:
    from .parity import ParityCase, onnx_reports, torch_reference

    for f in source.files_to_copy():
        shutil.copy2(f, tmp / f.name)

    say(f"loading {source.path.name} ({source.cfg.model_type}) in fp32")
    model = _load_model(source.path)
    written = _export_graphs(model, tmp, options, say)

    reference = case = None
    if options.check_tokens > 0:
        say(f"running PyTorch for the parity check ({options.check_tokens} tokens)")
        case = ParityCase.synthetic(source.cfg)
        # optimum moves only the exported wrappers' modules to --device: the rest of the model stays behind.
        reference = torch_reference(model.to(options.device), case, options.check_tokens)
    del model
    gc.collect()

    if "fp16" in options.precisions:
        from .fp16 import convert_to_fp16

        for graph in io_names.GRAPHS:
            say(f"converting {graph} to fp16")
            dst = tmp / io_names.graph_file(graph, "fp16")
            written[(graph, "fp16")] = convert_to_fp16(tmp / io_names.graph_file(graph, "fp32"), dst)

    if options.fused_decoder:
        from .gqa_decoder import build_decoder

        # int4's source: the fp16 graph when there is one (GroupQueryAttention runs on CUDA in fp16 only, so
        # that is the int4 graph a GPU can run), else the fp32 one (the CPU's).
        int4_source = "fp16" if "fp16" in options.precisions else "fp32"
        for precision in sorted(set(options.precisions), key=PRECISIONS.index):  # int4 last: it needs its source
            say(f"building the fused decoder ({precision})")
            target = tmp / io_names.graph_file(io_names.FUSED_DECODER, precision)
            if precision != "int4":
                build_decoder(source.path, target, precision)
            else:
                from .int4 import quantize_int4

                quantize_int4(tmp / io_names.graph_file(io_names.FUSED_DECODER, int4_source), target)
            written[(io_names.FUSED_DECODER, precision)] = external_data_files(target)

    if options.fused_vision:
        from .vision_fused import build_vision_encoder

        for precision in (p for p in FLOAT_PRECISIONS if p in options.precisions):  # int4 is the decoder's only
            say(f"building the fused vision encoder ({precision})")
            target = tmp / io_names.graph_file(io_names.FUSED_VISION, precision)
            build_vision_encoder(source.path, target, precision)
            written[(io_names.FUSED_VISION, precision)] = external_data_files(target)

    graphs = [
        graph_spec(tmp, graph, precision, io_names.graph_file(graph, precision), ext)
        for (graph, precision), ext in written.items()
    ]

    parity: list[ParityReport] = []
    if reference is not None and case is not None:
        say("running the ONNX graphs for the parity check")
        parity = onnx_reports(tmp, reference, case, [p for p in options.precisions if p in FLOAT_PRECISIONS],
                              options.check_tokens)

    if "fp32" not in options.precisions:  # fp32 was only the conversion source
        for graph in io_names.GRAPHS:
            for f in (io_names.graph_file(graph, "fp32"), *written[(graph, "fp32")]):
                (tmp / f).unlink(missing_ok=True)
        graphs = [g for g in graphs if g.precision != "fp32"]

    trt: TensorRTInfo | None = None
    if options.tensorrt:
        from .tensorrt import build_engines

        precision = "fp16" if "fp16" in options.precisions else "fp32"
        say(f"building TensorRT engines from the {precision} graphs")
        # vision_fused is onnxruntime contrib operators (CUDA kernels), nothing TensorRT would build an engine of
        trt = build_engines(tmp, [g for g in graphs if g.precision == precision and g.name != io_names.FUSED_VISION],
                            source.cfg, source.image_policy, precision)

    stats = {"seconds": round(time.monotonic() - t0, 2), "peak_rss_mb": round(peak_rss_mb(), 1)}
    manifest = build_manifest(source, key, options.key_dict(), graphs, parity, trt, stats)
    write_manifest(tmp, manifest)  # last: its presence marks the folder complete
    return manifest


def _check_fused_vision(source: SourceModelInfo) -> None:
    """--fused-vision covers Qwen2-VL's vision tower only: say so as one line (an input error)."""
    from .vision_fused import check_supported

    try:
        check_supported(source.path)
    except ValueError as exc:
        raise ModelFolderError(f"{source.path}: --fused-vision: {exc}") from None


def _load_model(path: Path) -> Any:
    from .parity import load_torch_model

    try:
        return load_torch_model(path)
    except Exception as exc:  # noqa: BLE001 - safetensors/transformers raise many types for a bad folder
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFolderError(f"{path}: transformers could not load the model: {first}") from None


def _export_graphs(model: Any, tmp: Path, options: ExportOptions, say: Log) -> dict[tuple[str, str], list[str]]:
    """Trace the three graphs in fp32 with optimum; returns external data files per (graph, precision)."""
    from optimum.exporters.onnx import export_models

    from .onnx_configs import DUMMY_SHAPES, onnx_config_class

    model_type = model.config.model_type
    written: dict[tuple[str, str], list[str]] = {}
    for graph in io_names.GRAPHS:
        cls = onnx_config_class(model_type, graph)
        say(f"exporting {graph}")
        with warnings.catch_warnings():
            _ignore_reviewed_trace_warnings()
            export_models(
                {graph: (cls.WRAPPER(model).eval(), cls.for_model(model.config))},
                output_dir=tmp,
                output_names=[io_names.graph_file(graph, "fp32")],
                opset=options.opset,
                device=options.device,
                input_shapes=dict(DUMMY_SHAPES),
                # optimum's fix-up reruns the graph on dummy inputs to pin axes; ours are all
                # declared, and for the 2B shape the extra session costs gigabytes.
                disable_dynamic_axes_fix=True,
            )
        path = tmp / io_names.graph_file(graph, "fp32")
        written[(graph, "fp32")] = external_data_files(path)
        gc.collect()
    return written


def _ignore_reviewed_trace_warnings() -> None:
    """Silence the trace warnings checked against transformers 4.57.6 (pinned) as harmless.

    - ``position_ids.shape[0] == 4``: always 3 rows here, the branch is constant by design;
    - ``kv_length + kv_offset - attention_mask.shape[-1] > 0``: the mask always spans
      past + sequence (the runtime contract), so "no padding" is the right constant;
    - ``self.keys.numel() == 0`` in DynamicLayer: traced with a non-empty past, so the
      cache length stays a Shape op and a length-0 past works at run time;
    - ``torch.tensor(0.0)`` constant in optimum's eager mask; aten::index "negative
      indices" (our indices are never negative); TorchScript-exporter deprecation.
    Any other warning still shows.
    """
    import torch

    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", message=r"Exporting aten::index operator")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(torch|optimum)\.")


def _existing_manifest(out: Path) -> Manifest | None:
    if not out.is_dir():
        return None
    try:
        return Manifest.load(out)
    except ManifestError:
        return None


def _check_can_replace(out: Path, existing: Manifest | None, source: SourceModelInfo, force: bool) -> None:
    if out.resolve() == source.path or out.resolve() in source.path.parents:
        # Even --force must not replace the folder the weights are read from.
        raise OutputFolderInUseError(f"{out} contains the model folder {source.path}; choose another export folder")
    if force or not out.exists():
        return
    if not out.is_dir():
        raise OutputFolderInUseError(f"{out} exists and is not a folder")
    if existing is None:
        if any(out.iterdir()):
            raise OutputFolderInUseError(
                f"{out} is not empty and holds no complete vlm-export manifest; pass --force to replace it"
            )
        return
    if existing.source.weights_sha256 != source.weights_sha256 or existing.source.config_sha256 != source.config_sha256:
        raise OutputFolderInUseError(
            f"{out} holds the export of another model ({existing.source.path}, weights "
            f"{existing.source.weights_sha256[:12]}); pass --force to replace it"
        )


def _estimate_bytes(source: SourceModelInfo, options: ExportOptions) -> int:
    """Rough size of the export: fp32 graphs (the tied embedding appears in two graphs), fp16 variants, the
    fused graphs and int4."""
    cfg = source.cfg
    embed = cfg.vocab_size * cfg.hidden_size
    fp32 = 4 * (source.num_params + (embed if cfg.tie_word_embeddings else 0))
    total = fp32  # fp32 is always written, at least as the fp16 source
    if "fp16" in options.precisions:
        total += fp32 // 2
    if options.fused_decoder or options.fused_vision:  # together, one more copy of the weights per float precision
        total += sum({"fp32": 4, "fp16": 2}.get(p, 0) for p in options.precisions) * source.num_params
    if "int4" in options.precisions:  # about half a byte a weight (4 bits plus block scales)
        total += source.num_params // 2
    return int(total * 1.05) + (64 << 20)


def free_bytes(folder: Path) -> int:
    """Free space where the export is written (a function so tests can simulate a full disk)."""
    return shutil.disk_usage(folder).free


def _check_disk_space(folder: Path, needed: int) -> None:
    free = free_bytes(folder)
    if free < needed:
        raise NoDiskSpaceError(
            f"not enough disk space in {folder}: the export needs about {needed / 1e9:.2f} GB, {free / 1e9:.2f} GB free"
        )


def _normalize_permissions(folder: Path) -> None:
    """Give every file the umask's usual mode: some writers (tempfile-based) create 0600 files."""
    umask = os.umask(0)
    os.umask(umask)
    for path in folder.rglob("*"):
        if path.is_file():
            path.chmod(0o666 & ~umask)


def _swap_into_place(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
        os.replace(tmp, out)
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    else:
        os.replace(tmp, out)


def peak_rss_mb() -> float:
    """Peak resident memory of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024
