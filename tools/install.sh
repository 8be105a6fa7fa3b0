#!/usr/bin/env bash
# kdzoo's one supported install path. Creates .venv/ in the repository, installs the pinned
# PyTorch and the maintained OpenMMLab forks (mmcv built from source with its C++ ops), timm,
# pytest and kdzoo itself in editable mode, then checks the imports.
# Non-interactive; re-running it is fast (pip finds everything installed / in its wheel cache).
# Environment: PYTHON (interpreter, default python3.11 or python3), MAX_JOBS (mmcv build, default nproc).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$(date +%s)

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
"$PYTHON" - <<'PY' || { echo "install.sh: kdzoo needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
import sys
raise SystemExit(0 if sys.version_info[:2] == (3, 11) else 1)
PY

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip install --disable-pip-version-check --no-input)
export PIP_ROOT_USER_ACTION=ignore

# 1. Build tools: onedl-mmcv's setup.py imports pkg_resources (removed in setuptools 81) and its
#    pyproject uses a PEP 639 license string (setuptools >= 77).
"${PIP[@]}" -q "pip>=24,<26" "setuptools>=77,<81" wheel ninja
# 2. PyTorch pinned: mmcv's ops do not compile against torch >= 2.14 (C++20 headers).
"${PIP[@]}" -q torch==2.11.0 torchvision==0.26.0
# 3. mmcv with C++ ops, compiled against the torch above (~20 min on 2 cores the first time;
#    pip caches the built wheel, so a re-install takes seconds).
if ! .venv/bin/python -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.3.6'" 2>/dev/null; then
  echo "install.sh: building onedl-mmcv 2.3.6 with C++ ops (first time: ~20 min on 2 cores)"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} "${PIP[@]}" --no-build-isolation onedl-mmcv==2.3.6
fi
# 4. The rest of the stack and the project itself.
"${PIP[@]}" -q --no-build-isolation onedl-mmengine==0.10.12 onedl-mmdetection==3.5.1 \
  onedl-mmsegmentation==1.4.2 timm==1.0.31 pytest tensorboard matplotlib
"${PIP[@]}" -q --no-build-isolation --no-deps -e .

.venv/bin/python - <<'PY'
import warnings
warnings.filterwarnings('ignore')
import torch, torchvision, mmengine, mmcv, mmcv.ops, mmdet, mmseg, timm, kdzoo, kdzoo.adapters
for m in (torch, torchvision, mmengine, mmcv, mmdet, mmseg, timm, kdzoo):
    print(f'{m.__name__:12s} {m.__version__}')
print('mmcv.ops     ok (nms:', mmcv.ops.nms.__module__ + ')')
PY
echo "install.sh: done in $(( $(date +%s) - start )) s; interpreter: .venv/bin/python"
