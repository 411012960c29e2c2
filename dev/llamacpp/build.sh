#!/usr/bin/env bash
# dev/llamacpp/build.sh - build llama.cpp (the copy vendored in the PyPI sdist of
# llama-cpp-python) for reference values: llama-quantize, llama-bench, llama-tokenize and
# libllama. Dev-only: the product and the tests never run it.
#
# Usage: dev/llamacpp/build.sh [WORKDIR]     (default /tmp/llamacpp; JOBS=2 by default)
# Result: $WORKDIR/build/bin/{llama-quantize,llama-bench,llama-tokenize,libllama.so,...}
#         $WORKDIR/src -> the vendored llama.cpp source tree (headers: include/, ggml/include/)
#
# llama-cpp-python 0.3.36 vendors ggml-org/llama.cpp@0c1e57098 (its CHANGELOG), the build
# that ../shared/models/smollm2-135m-instruct/SOURCE.txt quotes. PyPI is reachable from here,
# GitHub is not, hence the sdist.
# Flags: no -march=native (GGML_NATIVE=OFF), AVX/AVX2/FMA/F16C/BMI2 + AVX-512F explicitly,
# AMX off (the AMX path died with an illegal instruction on this machine kind), no BLAS,
# OpenMP as ggml defaults, Release.
set -euo pipefail
VERSION=0.3.36
SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
WORK=${1:-/tmp/llamacpp}
JOBS=${JOBS:-2}
mkdir -p "$WORK"
cd "$WORK"

command -v cmake >/dev/null || { apt-get update && apt-get install -y cmake; }

sdist=llama_cpp_python-$VERSION.tar.gz
if [ ! -f "$sdist" ]; then
    pip download --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d .
fi
echo "$SHA256  $sdist" | sha256sum -c -
if [ ! -d "llama_cpp_python-$VERSION" ]; then
    tar xzf "$sdist"
fi
ln -sfn "llama_cpp_python-$VERSION/vendor/llama.cpp" src

cmake -S src -B build \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=ON \
    -DGGML_NATIVE=OFF \
    -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
    -DGGML_AVX512=ON \
    -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
    -DGGML_BLAS=OFF \
    -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
    -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_BUILD_NUMBER=0 -DLLAMA_BUILD_COMMIT=0c1e570
cmake --build build -j"$JOBS" --target llama-quantize llama-bench llama-tokenize llama
ls -l build/bin
