"""What accelerator is here: GPU name and compute capability, TensorRT runtime version.

Standard library only (nvidia-smi, ctypes), so the torch-free runtime and the
exporter share one answer to "which GPU is this engine for?".
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from functools import lru_cache

_LIBNVINFER = ("libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so", "nvinfer_10.dll", "nvinfer.dll")


def tensorrt_version() -> str | None:
    """TensorRT runtime version, from the Python package or libnvinfer itself; None if absent."""
    try:
        import tensorrt  # type: ignore[import-not-found]

        return str(tensorrt.__version__)
    except Exception:
        pass
    for name in _LIBNVINFER:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            v = int(lib.getInferLibVersion())
        except Exception:
            return "unknown"
        # 10.3.0 is encoded as 100300 (TensorRT >= 10) and 8.6.1 as 8601.
        return f"{v // 10000}.{v // 100 % 100}.{v % 100}" if v >= 100000 else f"{v // 1000}.{v // 100 % 10}.{v % 100}"
    return None


@lru_cache(maxsize=1)
def detect_gpu() -> tuple[str, str] | None:
    """(name, compute capability "9.0") of GPU 0 via nvidia-smi; None without a visible NVIDIA GPU."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,compute_cap", "--format=csv,noheader", "--id=0"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not out:
        return None
    name, _, cc = out.splitlines()[0].rpartition(",")
    return name.strip(), cc.strip()
