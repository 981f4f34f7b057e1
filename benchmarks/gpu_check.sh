#!/usr/bin/env bash
# One prepared GPU check (issue 22, item 4): training img/s of every downsampling method at 224x224,
# batch 128, mixed precision (mixed_float16), with each method's ratio to `stride` from the same run
# (bench_resnet.py: interleaved rounds, medians of per-round ratios, table + provenance record in
# GPU_CHECK_OUT, default /tmp/gpu_check: train224.md and train224.json; a run the limit cuts short
# keeps its whole rounds).
# Run from anywhere on a machine with a GPU and the package's dependencies (it imports this checkout):
#     bash benchmarks/gpu_check.sh                 # stops itself after GPU_CHECK_LIMIT seconds (480)
#     GPU_CHECK_DRY=1 bash benchmarks/gpu_check.sh # the same script on CPU with tiny sizes (a check of the script)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's package, installed or not
limit="${GPU_CHECK_LIMIT:-480}"  # 8 minutes, the issue's budget; the whole run is killed past it
if [[ "${GPU_CHECK_DRY:-0}" == "1" ]]; then
    echo "gpu_check: dry run on CPU, tiny sizes (not a measurement)"
    sizes=(--image-size 32 --batch-size 4 --rounds 10 --steps 1 --warmup 1 --width 0.125 --num-classes 10)
    name=train_dry
else
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import tensorflow as tf, sys; gpus = tf.config.list_physical_devices('GPU'); print('TensorFlow GPUs:', gpus); sys.exit(0 if gpus else 1)" \
        || { echo "gpu_check: TensorFlow sees no GPU; stopping (GPU_CHECK_DRY=1 checks the script on CPU)" >&2; exit 1; }
    sizes=(--image-size 224 --batch-size 128 --rounds 10 --steps 3 --warmup 2)
    name=train224
fi
git log -1 --format='commit %H (%cd)' 2>/dev/null || true
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
out="${GPU_CHECK_OUT:-/tmp/gpu_check}"
mkdir -p "$out"
rc=0
timeout --signal=INT "$limit" python3 benchmarks/bench_resnet.py "${sizes[@]}" --mixed-precision \
    --output "$out/$name.md" --note "${GPU_CHECK_NOTE:-gpu_check.sh}" || rc=$?
if [[ "$rc" == 124 ]]; then
    echo "gpu_check: stopped at the ${limit} s limit; $out/$name.md holds the whole rounds measured, if any" >&2
fi
echo "gpu_check: done in $(( $(date +%s) - start )) s; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$rc"
