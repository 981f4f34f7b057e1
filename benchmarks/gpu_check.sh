#!/usr/bin/env bash
# The GPU figures issue 2 asks for: every variant at 224x224, batch 128, float32 and mixed precision.
# Run on a machine with a GPU and the package installed (`pip install -e .`); about 5 minutes on an H100.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 benchmarks/bench_resnet.py --image-size 224 --batch-size 128 --steps 10
python3 benchmarks/bench_resnet.py --image-size 224 --batch-size 128 --steps 10 --mixed-precision
