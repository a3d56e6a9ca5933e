#!/usr/bin/env bash
# Downloads the wheels of scripts/gpu-wheels.txt into .tools/gpu-wheels/ (git-ignored), for a GPU
# machine without network that runs scripts/gpu-check.sh. Run it where PyPI is reachable.
#
#   scripts/fetch-gpu-wheels.sh [--python-version 3.12] [--with-arrow] [--dest DIR] [--limit-mib 64]
#
#   --python-version  the GPU machine's Python (`python3 -V` there; default 3.12): the compiled
#                     wheels (xxhash, pyarrow, pandas) and multiprocess are made for one version
#   --with-arrow      also pyarrow, pandas and their needs (about 58 MiB more), for a machine
#                     that cannot import them
#   --limit-mib       refuse (exit 1) when the wheels add up to more than this (default 64)
set -euo pipefail
cd "$(dirname "$0")/.."

pyver=3.12
arrow=
dest=.tools/gpu-wheels
limit=64
while [ $# -gt 0 ]; do
  case "$1" in
    --python-version) pyver="${2:?--python-version needs a value, e.g. 3.12}"; shift 2 ;;
    --with-arrow) arrow=--with-arrow; shift ;;
    --dest) dest="${2:?--dest needs a folder}"; shift 2 ;;
    --limit-mib) limit="${2:?--limit-mib needs a number}"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fetch-gpu-wheels: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$pyver" in
  3.[0-9]|3.[0-9][0-9]) ;;
  *) echo "fetch-gpu-wheels: --python-version: give MAJOR.MINOR, e.g. 3.12, not $pyver" >&2; exit 2 ;;
esac

py="${DOCTOR_AGENT_PYTHON:-}"
[ -n "$py" ] || { [ -x .venv/bin/python ] && py=.venv/bin/python; } || py=python3
mapfile -t pins < <("$py" scripts/gpu_wheels.py all $arrow)

mkdir -p "$dest"
rm -f "$dest"/*.whl
echo "fetch-gpu-wheels: ${#pins[@]} wheels for CPython $pyver, linux x86_64, into $dest"
"$py" -m pip download --quiet --no-deps --only-binary=:all: \
  --python-version "$pyver" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -d "$dest" "${pins[@]}"

ls -l "$dest" | awk 'NR > 1 { printf "  %8.1f MiB  %s\n", $5 / 1048576, $9 }'
bytes=$(du -cb "$dest"/*.whl | tail -1 | cut -f1)
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
if [ "$bytes" -gt $((limit * 1048576)) ]; then
  echo "fetch-gpu-wheels: $mib MiB in all, over the $limit MiB limit: carry fewer (without --with-arrow where the machine has pyarrow and pandas)" >&2
  exit 1
fi
echo "fetch-gpu-wheels: $mib MiB in all (limit $limit MiB); carry $dest with the working tree"
