"""Parity of the ONNX graphs against PyTorch: prefill logits and greedy tokens.

Both sides see the same synthetic prompt: text tokens, two images of sizes
unlike the export's dummy images, more text. PyTorch runs transformers'
``generate`` (greedy, one beam, eos disabled so exactly N tokens come out) in
fp32; the ONNX side runs ``runtime.greedy_reference``. Reported: the largest
prefill logit difference over the whole prompt, the common greedy prefix,
the position-wise agreement and, at the first divergence, PyTorch's top-1 /
top-2 margin (random-weight models have near-ties, which a divergence at a
tiny margin explains).

Always compare against fp32 PyTorch, never bf16: bf16 rounding alone flips
near-tied tokens.
"""

from __future__ import annotations

import copy
import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..runtime.greedy_reference import GreedyResult, OnnxGraphs, greedy_generate
from ..runtime.manifest import ParityReport
from ..runtime.model_config import ModelConfig

# Two images in one prompt, neither the size of the export's dummy images (onnx_configs.DUMMY_SHAPES).
DEFAULT_GRIDS: tuple[tuple[int, int, int], ...] = ((1, 8, 12), (1, 6, 6))
FP32_LOGIT_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ParityCase:
    """One prompt with images, as numpy arrays (batch 1)."""

    input_ids: np.ndarray  # (1, seq) int64
    pixel_values: np.ndarray  # (num_patches, patch_dim) float32
    image_grid_thw: np.ndarray  # (num_images, 3) int64

    @classmethod
    def synthetic(
        cls, cfg: ModelConfig, grids: Sequence[Sequence[int]] = DEFAULT_GRIDS, seed: int = 0, text_len: int = 5
    ) -> "ParityCase":
        """Random text ids below every special id, each image wrapped in vision start/end tokens."""
        rng = np.random.default_rng(seed)
        special = min(cfg.image_token_id, cfg.video_token_id, cfg.vision_start_token_id, cfg.vision_end_token_id)
        high = min(special, cfg.vocab_size)
        grid = np.asarray(grids, dtype=np.int64).reshape(-1, 3)
        merge2 = cfg.vision.spatial_merge_size**2
        ids: list[int] = list(rng.integers(0, high, text_len))
        for t, h, w in grid.tolist():
            ids += [cfg.vision_start_token_id] + [cfg.image_token_id] * (t * h * w // merge2) + [cfg.vision_end_token_id]
            ids += list(rng.integers(0, high, text_len))
        patches = int(np.prod(grid, axis=1).sum())
        pixels = rng.standard_normal((patches, cfg.vision.patch_dim)).astype(np.float32)
        return cls(np.asarray([ids], dtype=np.int64), pixels, grid)


@dataclass(frozen=True)
class TorchReference:
    tokens: np.ndarray  # (1, n) int64
    prefill_logits: np.ndarray  # (1, seq, vocab) float32
    step_logits: np.ndarray  # (n, vocab) float32: the logits each token was picked from


def load_torch_model(model_dir: str | Path) -> Any:
    """The HF model in fp32 with eager attention (the attention the graphs were traced with)."""
    import torch
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(
        str(model_dir), dtype=torch.float32, attn_implementation="eager"
    )
    return model.eval()


def torch_reference(model: Any, case: ParityCase, max_new_tokens: int) -> TorchReference:
    """Greedy ``generate`` for exactly ``max_new_tokens`` tokens plus a full-prompt forward."""
    import torch

    # Same device as the model (it may have been traced on CUDA); TF32 off so GPU fp32 is real fp32.
    device = next(model.parameters()).device
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    ids = torch.from_numpy(case.input_ids).to(device)
    inputs = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": torch.from_numpy(case.pixel_values).to(device),
        "image_grid_thw": torch.from_numpy(case.image_grid_thw).to(device),
    }
    gen = copy.deepcopy(model.generation_config)
    # eos disabled so both sides produce the same number of tokens; sampling settings
    # of the checkpoint (Qwen ships do_sample with top_k=1) switched off explicitly.
    gen.eos_token_id = None
    gen.do_sample, gen.num_beams, gen.top_k, gen.top_p, gen.temperature = False, 1, None, None, None
    gen.repetition_penalty = None
    gen.max_new_tokens, gen.min_new_tokens = max_new_tokens, None
    gen.pad_token_id = gen.pad_token_id if gen.pad_token_id is not None else 0
    saved = model.generation_config
    model.generation_config = gen  # generate() falls back to the model's config for unset fields
    try:
        with torch.no_grad():
            out = model.generate(
                **inputs, generation_config=gen, return_dict_in_generate=True, output_logits=True
            )
            prefill = model(**inputs).logits
    finally:
        model.generation_config = saved
    tokens = out.sequences[:, ids.shape[1] :].cpu().numpy()
    steps = torch.cat([lg.float() for lg in out.logits], dim=0).cpu().numpy()
    return TorchReference(tokens=tokens, prefill_logits=prefill.float().cpu().numpy(), step_logits=steps)


def compare(
    reference: TorchReference, result: GreedyResult, precision: str, grids: np.ndarray, tolerance: float
) -> ParityReport:
    ref, got = reference.tokens[0], result.tokens[0]
    n = min(len(ref), len(got))
    same = ref[:n] == got[:n]
    if not same.all():
        first: int | None = int(np.argmin(same))
    else:
        first = None if len(ref) == len(got) else n
    margin = None
    if first is not None and first < len(reference.step_logits):
        top2 = np.sort(reference.step_logits[first])[-2:]
        margin = float(top2[1] - top2[0])
    diff = float(np.abs(result.prefill_logits - reference.prefill_logits).max())
    finite = bool(np.isfinite(result.prefill_logits).all())
    # fp32 must match PyTorch; reduced precisions only report (they are compared to fp32 PyTorch).
    passed = finite and (precision != "fp32" or (first is None and diff <= tolerance))
    return ParityReport(
        precision=precision,
        max_new_tokens=int(len(ref)),
        tokens_equal=int(n if first is None else first),
        agreement=float(same.mean()) if n else 0.0,
        first_divergence=first,
        prefill_max_abs_diff=diff,
        image_grids=tuple(tuple(int(x) for x in g) for g in np.asarray(grids).tolist()),
        top2_margin_at_divergence=margin,
        passed=passed,
        tolerance=tolerance,
    )


def check_export(
    export_dir: str | Path,
    precisions: Sequence[str],
    max_new_tokens: int = 16,
    model: Any = None,
    model_dir: str | Path | None = None,
    case: ParityCase | None = None,
    tolerance: float = FP32_LOGIT_TOLERANCE,
    providers: Sequence[str] | None = None,
) -> list[ParityReport]:
    """Run PyTorch once, free it, then run the graphs of each precision; one report per precision.

    PyTorch goes first and is released before the ONNX sessions load, so the
    peak memory is the larger of the two rather than their sum (it matters for
    the 2B shape on a 24 GB machine).
    """
    cfg = ModelConfig.from_folder(export_dir)
    case = case or ParityCase.synthetic(cfg)
    owned = model is None
    if owned:
        if model_dir is None:
            raise ValueError("check_export needs a loaded model or model_dir")
        model = load_torch_model(model_dir)
    reference = torch_reference(model, case, max_new_tokens)
    if owned:
        del model
        gc.collect()
    return onnx_reports(export_dir, reference, case, precisions, max_new_tokens, tolerance, providers)


def onnx_reports(
    export_dir: str | Path,
    reference: TorchReference,
    case: ParityCase,
    precisions: Sequence[str],
    max_new_tokens: int,
    tolerance: float = FP32_LOGIT_TOLERANCE,
    providers: Sequence[str] | None = None,
) -> list[ParityReport]:
    """Run the graphs of each precision on ``case`` and compare with a PyTorch reference."""
    reports = []
    for precision in precisions:
        graphs = OnnxGraphs.load(export_dir, precision, providers=providers)
        result = greedy_generate(
            graphs,
            case.input_ids,
            pixel_values=case.pixel_values,
            image_grid_thw=case.image_grid_thw,
            max_new_tokens=max_new_tokens,
        )
        reports.append(compare(reference, result, precision, case.image_grid_thw, tolerance))
        del graphs
        gc.collect()
    return reports
