#!/usr/bin/env bash
# dev/gpu/prebuild.sh DIR [SCHEME_DIR] - everything tests/gpu/run.sh (and pipeline.sh) need on
# a device machine that has the CUDA driver but not this project's Debian -dev packages:
# builds here (make, with nvcc), then copies into DIR the programs (DIR/bin),
# tests/gpu/test_cuda (DIR/test_cuda), the shared libraries they load that are not part of
# CUDA or glibc (DIR/lib), the stories260K test model (DIR/shared/models/stories260K), the
# commit (DIR/commit) and, given SCHEME_DIR (a finished CPU run's scheme, e.g.
# artifacts/small/loo), the files tests/gpu/pipeline.sh reads (DIR/scheme). Then packs DIR
# into DIR.tgz (OpenBLAS alone is 35 MB; the archive about a third of the folder), the one
# path to carry. On the device machine:
#   tar xzf DIR.tgz && ITREK_GPU_PREBUILT=DIR bash tests/gpu/run.sh
#   ITREK_GPU_PREBUILT=DIR bash tests/gpu/pipeline.sh DIR/scheme
set -eu
dir=${1:?usage: dev/gpu/prebuild.sh DIR [SCHEME_DIR]}
scheme=${2:-}
cd "$(dirname "$0")/../.."
SHARED=${SHARED:-$(cd .. && pwd)/shared}
make -j"$(nproc)" >/dev/null
NV=/usr/local/cuda/lib64
mkdir -p build/rel/tests
cc -Icommon -D_GNU_SOURCE -I/usr/include/x86_64-linux-gnu/openblas-pthread -DITREK_HAVE_CUDA=1 \
    -std=c11 -O2 -g -Wall -Wextra -Werror -pthread -o build/rel/tests/test_cuda tests/gpu/test_cuda.c tests/gpu/bench_cuda.c \
    build/rel/libitrek.a -L$NV -Wl,-rpath,$NV -lcudart -lstdc++ -ldl -lmsgpackc -lzstd -ljansson -lpcre2-8 -ldnnl -lopenblas -lm
rm -rf "$dir"
mkdir -p "$dir/bin" "$dir/lib" "$dir/shared/models"
cp bin/* "$dir/bin/"
cp build/rel/tests/test_cuda "$dir/test_cuda"
cp -r "$SHARED/models/stories260K" "$dir/shared/models/"
# the libraries our programs load, by the name the loader asks for, minus glibc's, the C++
# runtime's and CUDA's own (the device machine's driver must match its CUDA runtime)
ldd "$dir/test_cuda" "$dir"/bin/* | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
    grep -Ev '^(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|libcudart)\.so' |
    while read -r name path; do cp -L "$path" "$dir/lib/$name"; done
git rev-parse HEAD >"$dir/commit"
if [ -n "$scheme" ]; then
    mkdir -p "$dir/scheme/times"
    for f in queries-test.mp instructions.mp adapter answers-test.mp rank.params lora.params fuse.params \
        metrics.params interactions.mp cand-test.mp llm.json lora-log.jsonl backbone; do
        cp -r "$scheme/$f" "$dir/scheme/"
    done
    cp "$scheme"/times/rank-test "$scheme"/times/lora-train "$dir/scheme/times/" 2>/dev/null || true
fi
tar czf "$dir.tgz" "$dir"
du -sh "$dir" "$dir.tgz"
