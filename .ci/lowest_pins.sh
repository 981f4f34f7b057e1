#!/usr/bin/env bash
# Installs the LOWEST versions that setup.py allows (every "pkg>=X" pinned to "pkg==X") into a fresh
# venv, installs the package there, and runs a subset of the tests against them. Not run by .ci/run
# (it downloads ~700 MB of wheels). Usage: bash .ci/lowest_pins.sh [VENV_DIR] [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-/tmp/keras-shiftinv-lowpins}"
shift || true
pins=$(python3 - <<'PY'
import ast, re
tree = ast.parse(open("setup.py").read())
call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
requires = ast.literal_eval(next(k.value for k in call.keywords if k.arg == "install_requires"))
print(" ".join(re.sub(r">=([^,]+).*", r"==\1", r) for r in requires))
PY
)
echo "lowest pins: $pins"
python3 -m venv "$venv"
# tensorflow-metadata 1.21 (pulled in by tensorflow-datasets) declares protobuf>=4.25.2 but imports
# protobuf 5's runtime_version; TF 2.16-2.17 need protobuf<5, so the last release that works with it:
"$venv/bin/pip" install -q $pins "tensorflow-metadata<1.18" "pytest>=7"
"$venv/bin/pip" install -q --no-build-isolation -e .
"$venv/bin/pip" list 2>/dev/null | grep -iE "^(tensorflow|keras|numpy|tensorflow-datasets|pillow|matplotlib|tqdm|tensorboard) "
if [ "$#" -eq 0 ]; then
  set -- tests/test_layers.py tests/test_data.py tests/test_evaluate.py
fi
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
# A training smoke test through the installed command: train one epoch, evaluate the model.
run=$(mktemp -d)
"$venv/bin/shiftinv" train --model group --dataset fashion_mnist --width 0.125 --epochs 1 --batch-size 32 \
  --max-train-examples 256 --max-eval-examples 128 --verbose 2 --model-dir "$run/model"
"$venv/bin/shiftinv" evaluate "$run/model/final.keras" --max-examples 128 --stability-images 16 --out "$run/report"
test -s "$run/report/report.json" && echo "lowest pins: smoke training + evaluation OK"
rm -rf "$run"
