# ITREK build. `make` builds bin/<stage>; `make test`, `make bench`, `make results`,
# `make install PREFIX=...`, `make clean`, `make deps`. `make SAN=1 ...` builds and tests
# with AddressSanitizer + UndefinedBehaviorSanitizer into build/san/.
#
# Sources are found by wildcard: every common/<module>/*.c goes into libitrek.a, every
# stages/*.c becomes one program, every tests/unit/test_*.c one unit-test program.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
.DELETE_ON_ERROR:
.SECONDARY:

VERSION := 0.1.0
PREFIX  ?= /usr/local
CC      ?= cc
NVCC    ?= $(shell command -v nvcc 2>/dev/null || { test -x /usr/local/cuda/bin/nvcc && echo /usr/local/cuda/bin/nvcc; })

# OpenBLAS picks its kernels for the CPU it finds when a program starts. Debian 12's 0.3.21 does
# not know recent Intel Xeons (CPU family 6, model 207 on the machines this project runs on) and
# falls back to its Prescott (SSE3) kernels, at half the speed of its AVX2 ones there
# (pretraining 1,783 against 3,269 tokens/s). Every recipe and test runs with the AVX2 (Haswell)
# kernels pinned wherever the CPU has AVX2 and FMA: faster, and the same arithmetic on every such
# machine whatever OpenBLAS would detect, so the committed tables reproduce. A value in the
# environment wins; without AVX2 OpenBLAS chooses. docs/ARCHITECTURE.md, "BLAS kernels".
OPENBLAS_CORETYPE ?= $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo && echo Haswell)
ifneq ($(OPENBLAS_CORETYPE),)
  export OPENBLAS_CORETYPE
endif

ifeq ($(SAN),1)
  BUILD  := build/san
  BINDIR := build/san/bin
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  OPT := -O1 -g
else
  BUILD  := build/rel
  BINDIR := bin
  SANFLAGS :=
  OPT := -O2 -g
endif

CPPFLAGS += -Icommon -D_GNU_SOURCE -DITREK_VERSION='"$(VERSION)"' -I/usr/include/x86_64-linux-gnu/openblas-pthread
CFLAGS   += -std=c11 $(OPT) -Wall -Wextra -Werror -pthread $(SANFLAGS)
LDFLAGS  += -pthread $(SANFLAGS)
LDLIBS   += -lmsgpackc -lzstd -ljansson -lpcre2-8 -ldnnl -lopenblas -lm

LIB_SRCS   := $(sort $(wildcard common/*/*.c common/*/*/*.c))
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/%.o)
STAGES     := $(sort $(basename $(notdir $(wildcard stages/*.c))))
PROGS      := $(STAGES:%=$(BINDIR)/%)
UNIT_SRCS  := $(sort $(wildcard tests/unit/test_*.c tests/llm/test_*.c))
UNIT_PROGS := $(UNIT_SRCS:tests/%.c=$(BUILD)/tests/%)

# CUDA backend: built when nvcc exists; linked into the programs that select it at run time.
CU_SRCS := $(sort $(wildcard common/llm/cuda/*.cu))
ifneq ($(NVCC),)
ifneq ($(CU_SRCS),)
  CU_OBJS  := $(CU_SRCS:%.cu=$(BUILD)/%.o)
  CPPFLAGS += -DITREK_HAVE_CUDA=1
  CUDA_HOME := $(patsubst %/bin/nvcc,%,$(NVCC))
  LDFLAGS  += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64
  LDLIBS   += -lcudart -lstdc++ -ldl
  NVCCFLAGS ?= -O2 -std=c++17 -Icommon -Werror all-warnings \
               -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
endif
endif

.PHONY: all test bench results base install clean deps unit-progs
all: $(PROGS) unit-progs

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/%.o: %.cu $(wildcard common/*/*.h common/llm/cuda/*.cuh)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c -o $@ $<

$(BUILD)/libitrek.a: $(LIB_OBJS) $(CU_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BINDIR)/%: $(BUILD)/stages/%.o $(BUILD)/libitrek.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libitrek.a $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/libitrek.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libitrek.a $(LDLIBS)

unit-progs: $(UNIT_PROGS)

# The test runner: unit programs and CLI scripts; ends with "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory all
	@SAN=$(SAN) BINDIR=$(abspath $(BINDIR)) UNITDIR=$(abspath $(BUILD)/tests) tests/run.sh $(TESTS)

bench: deps
	@$(MAKE) --no-print-directory all
	@BINDIR=$(abspath $(BINDIR)) tests/bench/run.sh

install: $(PROGS)
	install -d $(DESTDIR)$(PREFIX)/bin
	for p in $(STAGES); do install -m 755 $(BINDIR)/$$p $(DESTDIR)$(PREFIX)/bin/itrek-$$p; done
	install -d $(DESTDIR)$(PREFIX)/share/itrek/prompts
	install -m 644 data/prompts/*.tmpl $(DESTDIR)$(PREFIX)/share/itrek/prompts/

clean:
	rm -rf build bin

# Debian packages the build and the pipeline need.
DEB_PKGS := build-essential libmsgpack-dev libzstd-dev libopenblas-dev libjansson-dev libpcre2-dev libdnnl-dev sentencepiece curl unzip gnuplot-nox jq python3-pip
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all present"; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: missing packages; run: sudo apt-get install -y $$missing"; exit 1; fi

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

include pipeline.mk

# The BPR inner loop and the LLM kernels gain from -O3's vectoriser (measured: make bench).
ifneq ($(SAN),1)
$(BUILD)/common/rec/mf.o: OPT := -O3 -g
$(BUILD)/common/llm/backend_cpu.o: OPT := -O3 -g
$(BUILD)/common/llm/backend_cpu_train.o: OPT := -O3 -g
$(BUILD)/common/llm/train.o: OPT := -O3 -g
endif
