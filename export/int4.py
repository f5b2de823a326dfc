"""int4 weight-only decoder: every MatMul with a constant weight becomes ``MatMulNBits`` (onnxruntime's
quantization tools), for memory-bound devices (Jetson) where decoding reads every weight once a token.

Only the fused decoder (export/gqa_decoder.py) is quantized: its projections and LM head are plain
MatMuls on initializers, which is what the quantizer rewrites; the vision encoder and the token
embedding stay at the export's float precision. Blocks of 32 weights share a scale (symmetric).
"""

from __future__ import annotations

from pathlib import Path

BLOCK_SIZE = 32
EXTERNAL_DATA_BYTES = 1_500_000_000  # larger graphs keep their weights beside them (2 GB protobuf limit)


def quantize_int4(src: str | Path, dst: str | Path, block_size: int = BLOCK_SIZE) -> Path:
    """Write ``src`` (an fp32 or fp16 ONNX graph) with int4 block-quantized MatMul weights to ``dst``."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    src, dst = Path(src), Path(dst)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(src)), block_size=block_size, is_symmetric=True)
    quantizer.process()
    dst.parent.mkdir(parents=True, exist_ok=True)
    large = quantizer.model.model.ByteSize() > EXTERNAL_DATA_BYTES
    quantizer.model.save_model_to_file(str(dst), use_external_data_format=large)
    return dst
