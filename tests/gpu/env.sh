# tests/gpu/env.sh - sourced by tests/gpu/run.sh and tests/gpu/pipeline.sh: where the programs
# and the libraries they load are on a lent GPU machine. Sets BIN (the stages) and, with
# ITREK_GPU_PREBUILT=DIR (binaries from dev/gpu/prebuild.sh), TC (test_cuda), SHARED and
# LD_LIBRARY_PATH; PREBUILT is DIR made absolute, or empty. Prints what it found with `say`
# when the caller defines it.
_gpu_say() { if declare -F say >/dev/null; then say "$@"; else echo "$@" >&2; fi; }
# cuBLAS is opened with dlopen: where the loader does not know it, look in the usual places
if ! ldconfig -p 2>/dev/null | grep -q 'libcublas\.so'; then
    _cub=$(find /usr/local /opt /usr/lib -name 'libcublas.so.1[0-9]*' 2>/dev/null | head -1)
    [ -n "$_cub" ] && export LD_LIBRARY_PATH=$(dirname "$_cub")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    _gpu_say "cuBLAS: ${_cub:-not found}"
fi
PREBUILT=${ITREK_GPU_PREBUILT:-}
if [ -n "$PREBUILT" ]; then
    PREBUILT=$(cd "$PREBUILT" && pwd)
    export LD_LIBRARY_PATH=$PREBUILT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export SHARED=$PREBUILT/shared
    BIN=$PREBUILT/bin TC=$PREBUILT/test_cuda
    _gpu_say "prebuilt: $PREBUILT ($(cat "$PREBUILT/commit" 2>/dev/null))"
else
    BIN=${BINDIR:-$PWD/bin} TC=build/rel/tests/test_cuda
fi
