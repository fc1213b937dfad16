#!/usr/bin/env bash
# Builds graft-check (the engine core without Node, native/standalone) against ggml and
# llama.cpp compiled from the pinned source, with CUDA (sm_90 unless GRAFT_CUDA_ARCH says
# otherwise), generates its test models and runs the parity, gradient and speed checks,
# printing one JSON object. For GPU servers with cmake and a CUDA toolchain but no Node and no
# network.
#
#   native/scripts/gpu-check.sh [--cpu] [--big] [--build-only]
#                                                 build and run (--cpu: no CUDA; --big: also
#                                                 the Llama-3-8B-shaped Q4_K model, ~5 GB)
#   native/scripts/gpu-check.sh --pack DIR        copy the part of the llama.cpp source the
#                                                 build needs (~30 MB) to DIR, to carry along
#
# The llama.cpp source is taken from $GRAFT_LLAMA_SRC, else native/build/llama.cpp (made by
# `npm install`), else native/build/llama-src (a --pack copy), else cloned from
# node-llama-cpp's bundle.
set -euo pipefail
native="$(cd "$(dirname "$0")/.." && pwd)"
repo="$(dirname "$native")"

find_source() {
  for d in "${GRAFT_LLAMA_SRC:-}" "$native/build/llama.cpp" "$native/build/llama-src"; do
    if [ -n "$d" ] && [ -f "$d/ggml/include/ggml.h" ]; then echo "$d"; return; fi
  done
  local bundle="$repo/node_modules/node-llama-cpp/llama/gitRelease.bundle"
  if [ -f "$bundle" ]; then
    git clone --quiet "$bundle" "$native/build/llama.cpp" >&2
    echo "$native/build/llama.cpp"; return
  fi
  echo "gpu-check: no llama.cpp source: set GRAFT_LLAMA_SRC, run npm install, or carry a --pack copy to native/build/llama-src" >&2
  exit 1
}

if [ "${1:-}" = "--pack" ]; then
  dest="${2:?usage: gpu-check.sh --pack DIR}"
  src="$(find_source)"
  mkdir -p "$dest"
  (cd "$src" && tar cf - --exclude=.git CMakeLists.txt cmake include src vendor LICENSE \
      ggml/CMakeLists.txt ggml/cmake ggml/include ggml/src/*.c ggml/src/*.cpp ggml/src/*.h ggml/src/*.in ggml/src/CMakeLists.txt \
      ggml/src/ggml-cpu ggml/src/ggml-cuda ggml/src/ggml-blas) | (cd "$dest" && tar xf -)
  du -sh "$dest" >&2
  exit 0
fi

cuda=ON
big=""
build_only=""
for a in "$@"; do
  case "$a" in
    --cpu) cuda=OFF ;;
    --big) big="--big" ;;
    --build-only) build_only=1 ;;
    *) echo "gpu-check: unknown option $a" >&2; exit 2 ;;
  esac
done
command -v cmake >/dev/null || { echo "gpu-check: cmake is missing" >&2; exit 1; }
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
src="$(find_source)"
build="$native/build/standalone-$([ "$cuda" = ON ] && echo cuda || echo cpu)"
mkdir -p "$build"
start=$(date +%s)
cmake -S "$native/standalone" -B "$build" "${generator[@]}" -DGRAFT_LLAMA_SRC="$src" -DGGML_CUDA="$cuda" \
  -DCMAKE_CUDA_ARCHITECTURES="${GRAFT_CUDA_ARCH:-90}" -DGGML_CUDA_FA=OFF -DGGML_CUDA_NCCL=OFF >"$build/configure.log" 2>&1 \
  || { tail -30 "$build/configure.log" >&2; exit 1; }
cmake --build "$build" --target graft-check -j "$(nproc)" >"$build/build.log" 2>&1 || { tail -40 "$build/build.log" >&2; exit 1; }
echo "gpu-check: built in $(( $(date +%s) - start )) s" >&2
[ -n "$build_only" ] && exit 0
work="$(mktemp -d "${TMPDIR:-/tmp}/graft-check-XXXXXX")"
trap 'rm -rf "$work"' EXIT
gpu=""
[ "$cuda" = ON ] && gpu="--gpu"
"$build/graft-check" suite --dir "$work" $gpu $big --threads "${GRAFT_THREADS:-1}"
