#!/usr/bin/env bash
# Build the one-folder app with PyInstaller: dist/photosim/ (and dist/photosim.app on macOS).
#
#   installer/build.sh [PYTHON]
#
# PYTHON: the interpreter of the environment that has photosim and its dependencies installed
# (default: python3 on PATH, e.g. an activated virtual environment). PyInstaller is installed
# into that environment if missing. Use that environment's own interpreter: one that merely
# has the packages on its path (a .pth overlay) makes PyInstaller copy the torch and CUDA
# libraries twice (+1.4 GB) instead of linking them. Then it prints the size of dist/photosim
# and its largest parts, and runs installer/smoke_test.sh.
#
# Size: with the default PyPI torch (CUDA build) the folder is several GB, nearly all of it
# torch's CUDA libraries (nvidia/*: cuBLAS, cuDNN, NCCL, cuSPARSELt...) and libtorch_cuda. For a
# CPU-only app (well under 1 GB), build from an environment with the CPU wheels:
#   pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${1:-python3}
if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
    "$PY" -m pip install --quiet "pyinstaller>=6.10"
fi
"$PY" -c "import photosim, torch, PySide6" || {
    echo "build.sh: $PY lacks photosim or its dependencies (pip install -e . first)" >&2
    exit 1
}

start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller installer/photosim.spec
echo "== built in $(( $(date +%s) - start )) s"

echo "== size of dist/photosim"
du -sh dist/photosim
echo "== largest parts"
du -sm dist/photosim/_internal/* 2>/dev/null | sort -rn | head -12
if [ -d dist/photosim/_internal/nvidia ]; then
    echo "== of which CUDA libraries (nvidia/*)"
    du -sm dist/photosim/_internal/nvidia/* | sort -rn | head -8
fi

# Random weights are enough to check that the frozen torch runs a model (no download).
weights=build/smoke-mobilenet_v3_large.pth
"$PY" -c "import sys, torch, torchvision
torch.save(torchvision.models.mobilenet_v3_large(weights=None).state_dict(), sys.argv[1])" "$weights"
SMOKE_WEIGHTS=$weights installer/smoke_test.sh dist/photosim
