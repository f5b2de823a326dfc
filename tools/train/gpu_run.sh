#!/bin/sh
# The GPU machine's side of a training run (docs/training.md, "On the GPU machine"): one verb a device call.
# Committed because the machine starts bare and .train/ does not outlive a session's checkout.
#
#   sh .whl/install.sh                     carry .whl/dl .whl/install.sh (a call of its own: with a 38 MB
#                                          checkpoint and the checkout it is over the 64 MiB a call carries)
#   sh tools/train/gpu_run.sh setup CKPT [BASE]   carry .whl/install.sh CKPT [BASE]
#                                          (CKPT: a trained hf/ or w32/ folder to continue; BASE: the folder
#                                          of its tokenizer and configs, CKPT itself where it has them, else
#                                          .train/base_v3_nw, which recipe.py builds: train.loop same_tokenizer)
#   sh tools/train/gpu_run.sh start LOOP_OPTIONS...   carry .train/photos_train .fonts
#                                          (train.loop under torchrun, one process a GPU, in the background)
#   sh tools/train/gpu_run.sh poll SECONDS   waits up to SECONDS while training runs; prints RUNNING or DONE
#   sh tools/train/gpu_run.sh finish       the run's --final-out as files under 16 MB in $OUT
#                                          (tools/train/finish_run.py takes them as they come back)
set -eu
verb=${1:?setup, start, poll or finish}
shift
pkg=/tmp/pkg/vlm_sudoku
running() { pgrep -f "[v]lm_sudoku.tools.train.loop --base" > /dev/null; }  # brackets: not this shell's own line

case $verb in
setup)
  ckpt=${1:?the checkpoint folder to continue}
  base=${2:-}
  if [ -z "$base" ]; then
    if [ -f "$ckpt/tokenizer.json" ]; then base=$ckpt; else base=.train/base_v3_nw; fi
  fi
  sh .whl/install.sh
  rm -rf /tmp/base /tmp/ckpt && cp -r "$base" /tmp/base && cp -r "$ckpt" /tmp/ckpt
  rm -f /tmp/base/*.safetensors /tmp/base/model.safetensors.index.json /tmp/base/README.md  # weights: CKPT's
  echo "base $base: $(ls /tmp/base | tr '\n' ' ')"
  echo "ckpt $ckpt: $(ls /tmp/ckpt | tr '\n' ' ')"
  ;;
start)
  mkdir -p /tmp/photos /tmp/fonts "$pkg" && cp -r .train/photos_train/. /tmp/photos/ && cp -r .fonts/. /tmp/fonts/
  for d in solver runtime export tools; do rm -rf "${pkg:?}/$d" && cp -r "$d" "$pkg/$d"; done
  touch "$pkg/__init__.py"
  gpus=$(nvidia-smi -L | wc -l)
  cores=$(nproc)
  workers=$(( cores / gpus - 1 ))
  echo "$gpus GPUs, $cores cores: $workers data workers a GPU"
  cd /tmp
  PYTHONPATH=/tmp/pkg:/tmp/site VLM_SUDOKU_FONTS=/tmp/fonts VLM_SUDOKU_PHOTOS=/tmp/photos \
    setsid nohup python3 -m torch.distributed.run --nproc-per-node "$gpus" -m vlm_sudoku.tools.train.loop \
    --base /tmp/base --ckpt /tmp/ckpt --workers "$workers" --final-out /tmp/final "$@" \
    > /tmp/train.log 2>&1 < /dev/null &
  sleep 90
  tail -n 5 /tmp/train.log
  ;;
poll)
  end=$(( $(date +%s) + ${1:?seconds} ))
  while running && [ "$(date +%s)" -lt "$end" ]; do sleep 10; done
  tail -n 8 /tmp/train.log
  if running; then echo RUNNING; else echo DONE; fi
  ;;
finish)
  if running; then echo "still training: poll first" >&2; exit 1; fi
  out=${OUT:?the device call sets OUT}
  final=/tmp/final
  [ -d "$final/w32" ] || { tail -n 30 /tmp/train.log; echo "no $final/w32: the run did not finish" >&2; exit 1; }
  cp "$final"/w32/model-*.safetensors "$out/"
  for f in "$final"/hf/model*.safetensors; do cp "$f" "$out/hf_$(basename "$f")"; done
  (cd "$final" && tar czf "$out/small.tgz" --exclude='*.safetensors' .)
  cp /tmp/train.log "$out/train.log"
  ls -la "$out"
  ;;
*)
  echo "unknown verb $verb: setup, start, poll or finish" >&2
  exit 2
  ;;
esac
