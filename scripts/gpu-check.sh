#!/usr/bin/env bash
# The TRL runner's GPU check: train.sft then rl.grpo through python/doctor_agent_trl on fresh
# weights of configs/qwen2.5-0.5b-instruct.json (its real vocabulary of 151936 kept), printing
# tokens/s, peak GPU memory and model FLOP utilisation, and writing them as JSON
# ($OUT/gpu-check.json when OUT is set, else gpu-check.json; --out PATH). The defaults are sized
# for a few minutes on one H100.
#
#   scripts/gpu-check.sh [--cpu-smoke] [--sft-steps N] [--sft-batch N] [--seq-len N]
#                        [--grpo-iterations N] [--prompts N] [--generations N] [--response-length N]
#                        [--mini-batch N] [--peak-tflops T] [--out PATH] ...   (--help lists all)
#
# Python: DOCTOR_AGENT_PYTHON, else .venv/bin/python, else python3; it needs PyTorch, transformers
# and accelerate. TRL, datasets and what they need that this Python cannot import are installed
# from the wheels in .tools/gpu-wheels/ (scripts/fetch-gpu-wheels.sh; DOCTOR_AGENT_GPU_WHEELS names
# another folder) into .tools/gpu-site/, without network; DOCTOR_AGENT_GPU_CHECK_INSTALL=all
# installs every carried wheel, also over the machine's own versions. --cpu-smoke (or
# DOCTOR_AGENT_GPU_CHECK_SMOKE=1): tiny shapes and a few steps, to try it without a GPU.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"  # paths given stay relative to the folder it is run from

py="${DOCTOR_AGENT_PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x "$root/.venv/bin/python" ]; then py="$root/.venv/bin/python"; else py=python3; fi
fi

wheels="${DOCTOR_AGENT_GPU_WHEELS:-$root/.tools/gpu-wheels}"
site="$root/.tools/gpu-site/$("$py" -c 'import sys; print(f"py{sys.version_info[0]}.{sys.version_info[1]}")')"
export PYTHONPATH="$site:$root/python${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

install=()
if [ "${DOCTOR_AGENT_GPU_CHECK_INSTALL:-}" = all ]; then
  install=("$wheels"/*.whl)
else
  missing=$("$py" "$root/scripts/gpu_wheels.py" missing) || exit 2
  mapfile -t install < <(printf '%s' "$missing" | sed '/^$/d')
fi
if [ ${#install[@]} -gt 0 ]; then
  if ! ls "$wheels"/*.whl >/dev/null 2>&1; then
    echo "gpu-check: $py cannot import ${install[*]}, and $wheels has no wheels:" \
      "run scripts/fetch-gpu-wheels.sh (with --python-version of this Python) where PyPI is reachable, and carry $wheels here" >&2
    exit 2
  fi
  echo "gpu-check: installing ${install[*]} from $wheels into $site" >&2
  if ! "$py" -m pip install --quiet --no-index --no-deps --no-compile --upgrade --disable-pip-version-check \
      --find-links "$wheels" --target "$site" "${install[@]}"; then
    echo "gpu-check: the wheels in $wheels do not install on this Python ($("$py" -V 2>&1)):" \
      "fetch them again with scripts/fetch-gpu-wheels.sh --python-version of this Python (and --with-arrow where pyarrow or pandas are missing)" >&2
    exit 2
  fi
fi
exec "$py" "$root/scripts/gpu_check.py" "$@"
