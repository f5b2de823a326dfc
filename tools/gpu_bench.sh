#!/bin/sh
# The GPU measurements of docs/benchmarks.md, in phases that fit the GPU machine's 10-minute commands.
#
#   sh tools/gpu_bench.sh export OUT   # random Qwen2-VL-2B weights + vlm-export fp32/fp16/int4 + fused decoder and vision
#   sh tools/gpu_bench.sh bench OUT    # vlm-bench: transformers baseline and every runtime row, one process
#   sh tools/gpu_bench.sh default OUT  # the default model on the GPU (fp32 as shipped, fp16 exported there)
#   sh tools/gpu_bench.sh tests OUT    # tests/test_cuda_provider.py
#   sh tools/gpu_bench.sh vision OUT   # the fused vision encoder fp16 (tools/bench_vision.py)
#   sh tools/gpu_bench.sh profile OUT  # the kernels of one fp16 CUDA-graph decode step (tools/profile_decode.py)
#   sh tools/gpu_bench.sh gemv OUT     # every ONNX form of the 2B shape's matrix-vector products (tools/bench_gemv.py)
#   sh tools/gpu_bench.sh all OUT      # export, bench, default, tests, profile, gemv (start it with setsid and poll:
#                                      # about 22 minutes)
#
# PYTHONPATH must reach vlm_sudoku and onnxruntime-gpu (docs/benchmarks.md says how they get there).
# Each phase writes its log under OUT; WORK (default /tmp/vlm-gpu) keeps the model and exports between phases.
set -eu
phase=${1:?phase: export, bench, default, tests, vision, profile, gemv or all}
out=${2:?output folder}
work=${WORK:-/tmp/vlm-gpu}
mkdir -p "$out" "$work"
say() { echo "== $(date +%T) $*" >&2; }
random_2b() {  # the Qwen2-VL-2B shape with random weights, made once per machine
    if [ ! -f "$work/q2b/config.json" ]; then
        say "random Qwen2-VL-2B weights"
        python3 -m vlm_sudoku.tools.make_random_model qwen2-vl-2b "$work/q2b" --tokenizer > "$out/make_model.log" 2>&1
    fi
}

case "$phase" in
all)
    for p in export bench default tests profile gemv; do sh "$0" "$p" "$out" || echo "phase $p failed" >&2; done
    ;;
export)
    random_2b
    say "vlm-export (fp32, fp16, int4, fused decoder and vision)"
    python3 -m vlm_sudoku.export.cli "$work/q2b" -o "$work/q2bx" --precision fp32 --precision fp16 \
        --precision int4 --fused-decoder --fused-vision --device cuda --check-tokens 0 > "$out/export.log" 2>&1
    # (no export-time parity here: vlm-bench compares every runtime row with transformers fp32 on 256 tokens)
    du -sh "$work"/q2bx/onnx/* >> "$out/export.log"
    ;;
bench)
    say "vlm-bench"
    python3 -m vlm_sudoku.tools.bench --model "$work/q2b" --export "$work/q2bx" --device cuda \
        --json-out "$out/benchmarks.json" > "$out/bench.md" 2> "$out/bench.err"
    cat "$out/bench.md"
    ;;
default)
    say "default model: vlm-export fp16 + fused decoder and vision"
    python3 -m vlm_sudoku.export.cli runtime/default_model/hf -o "$work/default_fp16" --precision fp16 \
        --fused-decoder --fused-vision --device cuda --check-tokens 16 --force > "$out/default_export.log" 2>&1
    for run in "runtime/default_model" "$work/default_fp16 --no-cuda-graph" "$work/default_fp16"; do
        say "bench_runtime $run"
        # shellcheck disable=SC2086
        python3 -m vlm_sudoku.tools.bench_runtime $run examples/image162.jpg --provider cuda --repeat 5 \
            >> "$out/default_model.md" 2>> "$out/default_model.err" || echo "failed: $run" >> "$out/default_model.md"
    done
    cat "$out/default_model.md"
    ;;
vision)
    random_2b
    say "bench_vision"
    python3 -m vlm_sudoku.tools.bench_vision "$work/q2b" > "$out/vision.md" 2> "$out/vision.err" || tail -5 "$out/vision.err"
    cat "$out/vision.md"
    ;;
profile)
    random_2b
    say "profile_decode"
    # a tight capacity beside the one the runtime used before session 6 (prompt + 512 + 512 headroom); the
    # attention backends onnxruntime 1.31 offers GroupQueryAttention (cuDNN, its own flash, cutlass, XQA)
    python3 -m vlm_sudoku.tools.profile_decode "$work/q2b" --top 14 --capacity 512 --capacity 1536 \
        --env "" --env ORT_ENABLE_CUDNN_FLASH_ATTENTION=0 \
        --env ORT_ENABLE_CUDNN_FLASH_ATTENTION=0,ORT_DISABLE_FLASH_ATTENTION=1 --env ORT_ENABLE_XQA=1 \
        > "$out/profile.md" 2> "$out/profile.err" || tail -5 "$out/profile.err"
    cat "$out/profile.md"
    ;;
gemv)
    say "bench_gemv"
    python3 -m vlm_sudoku.tools.bench_gemv > "$out/gemv.md" 2> "$out/gemv.err" || tail -5 "$out/gemv.err"
    cat "$out/gemv.md"
    ;;
tests)
    say "tests/test_cuda_provider.py"
    python3 -m pytest -q -p no:cacheprovider tests/test_cuda_provider.py > "$out/cuda_tests.log" 2>&1 || true
    tail -3 "$out/cuda_tests.log"
    ;;
*)
    echo "unknown phase $phase" >&2
    exit 2
    ;;
esac
say "done $phase"
