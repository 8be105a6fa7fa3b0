#!/usr/bin/env bash
# kdzoo's supported install path: a virtual environment in the repository with the pinned stack
# and kdzoo itself in editable mode (with the `kdzoo` command in $VENV/bin), then an import check.
# Non-interactive; re-running it is fast
# (pip finds everything installed / in its wheel cache).
#
#   bash tools/install.sh          full: PyTorch, the maintained OpenMMLab forks (onedl-mmengine,
#                                  onedl-mmcv compiled with its C++ ops, mmdetection,
#                                  mmsegmentation), timm, ONNX export tools, pytest, ruff. What CI
#                                  runs; segmentation and detection need it (~20 min on 2 cores
#                                  the first time, compiling mmcv).
#   bash tools/install.sh --core   no mmcv build, no mmdet / mmseg: PyTorch, onedl-mmengine, timm,
#                                  ONNX export tools, pytest, ruff, tensorboard. Enough for
#                                  kdzoo.losses, classification (kdzoo train, quickstart,
#                                  compare, analyze, export on cls configs); the
#                                  tests that need mmdet / mmseg / mmcv are skipped, with the
#                                  reason. Running the full install later on the same environment
#                                  completes it.
#
# Environment: PYTHON (interpreter, default python3.11 or python3), VENV (the environment's
# folder, default .venv), MAX_JOBS (mmcv build, default nproc).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$(date +%s)

case "${1:-}" in
  '') core=0 ;;
  --core) core=1 ;;
  *) echo "usage: bash tools/install.sh [--core]" >&2; exit 2 ;;
esac

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
"$PYTHON" - <<'PY' || { echo "install.sh: kdzoo needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
import sys
raise SystemExit(0 if sys.version_info[:2] == (3, 11) else 1)
PY

VENV=${VENV:-.venv}
PY=$VENV/bin/python
[ -x "$PY" ] || "$PYTHON" -m venv "$VENV"
PIP=("$PY" -m pip install --disable-pip-version-check --no-input)
export PIP_ROOT_USER_ACTION=ignore

# 1. Build tools: onedl-mmcv's setup.py imports pkg_resources (removed in setuptools 81) and its
#    pyproject uses a PEP 639 license string (setuptools >= 77).
"${PIP[@]}" -q "pip>=24,<26" "setuptools>=77,<81" wheel ninja
# 2. PyTorch pinned: mmcv's ops do not compile against torch >= 2.14 (C++20 headers).
"${PIP[@]}" -q torch==2.11.0 torchvision==0.26.0
# 3. mmcv with C++ ops, compiled against the torch above (~20 min on 2 cores the first time;
#    pip caches the built wheel, so a re-install takes seconds).
if [ "$core" = 0 ] && ! "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.3.6'" 2>/dev/null; then
  echo "install.sh: building onedl-mmcv 2.3.6 with C++ ops (first time: ~20 min on 2 cores)"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} "${PIP[@]}" --no-build-isolation onedl-mmcv==2.3.6
fi
# 4. The rest of the stack and kdzoo. MMEngine's hooks import cv2 without requiring it; torch
#    2.11's ONNX exporter needs onnxscript. ruff is pinned: .ci/run lints with it (ruff.toml),
#    and new ruff releases change what the rules report.
CORE=(onedl-mmengine==0.10.12 opencv-python timm==1.0.31 onnx==1.23.1 onnxruntime==1.30.0
      onnxscript==0.7.2 pytest ruff==0.17.6 tensorboard matplotlib)
TASKS=(onedl-mmdetection==3.5.1 onedl-mmsegmentation==1.4.2)
[ "$core" = 1 ] && TASKS=()
"${PIP[@]}" -q --no-build-isolation "${CORE[@]}" "${TASKS[@]}"
"${PIP[@]}" -q --no-build-isolation --no-deps -e .

KDZOO_CORE=$core "$PY" - <<'PY'
import os
import warnings
warnings.filterwarnings('ignore')
import onnxruntime, torch, torchvision, mmengine, timm, kdzoo, kdzoo.adapters.cls, kdzoo.losses
modules = [torch, torchvision, mmengine, timm, onnxruntime, kdzoo]
if os.environ['KDZOO_CORE'] == '0':
    import mmcv, mmcv.ops, mmdet, mmseg
    modules[3:3] = [mmcv, mmdet, mmseg]
for m in modules:
    print(f'{m.__name__:12s} {m.__version__}')
if os.environ['KDZOO_CORE'] == '0':
    print('mmcv.ops     ok (nms:', mmcv.ops.nms.__module__ + ')')
PY
"$VENV/bin/kdzoo" --help > /dev/null || { echo "install.sh: the kdzoo command does not run" >&2; exit 1; }
echo "install.sh: done in $(( $(date +%s) - start )) s; interpreter: $PY"
