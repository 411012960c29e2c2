# pipeline.mk - the ITREK DAG, included by the Makefile.
#
#   data -> split -> mf-train -> candgen -> metrics           (make base)
#   ... -> promptgen -> lora-train -> rank -> fuse -> metrics  (make results, later issues)
#
# Every artifact lives in $(ART)/<scheme>/ and is rebuilt only when an input, the program
# that makes it, or its parameters change: parameters go through write-if-changed stamp files
# (<step>.params), so changing one option reruns exactly the steps that depend on it.
# Profiles: tiny (CI, minutes), small (default), paper (BASE=LLaMA-7B dir, DEVICE=cuda).

PROFILE ?= small
SCHEMES ?= loo ratio
SEED    ?= 1
THREADS ?= 2  # fixed, not nproc: MF results depend on the thread count, and the committed tables must reproduce anywhere
ART     ?= artifacts/$(PROFILE)
RES     ?= results/$(PROFILE)
ML100K  ?= data/ml-100k
Q       := --quiet

ifeq ($(filter $(PROFILE),tiny small paper),)
  $(error PROFILE must be tiny, small or paper, not '$(PROFILE)')
endif

# --- per-profile parameters (MF defaults were chosen on valid; see docs/results.md)
MF_ARGS_tiny   := --epochs 40 --eval-every 5
MF_ARGS_small  :=
MF_ARGS_paper  :=
MF_ARGS        ?= $(MF_ARGS_$(PROFILE))
BOOTSTRAP_tiny := 200
BOOTSTRAP      ?= $(or $(BOOTSTRAP_$(PROFILE)),1000)
CAND_N         ?= 10
MF_PARAMS       = $(strip $(MF_ARGS) --seed $(SEED) --threads $(THREADS))

.PHONY: base results data FORCE
FORCE:

# write-if-changed: $(call stamp,FILE,CONTENT)
define stamp
@mkdir -p $(dir $(1)); printf '%s\n' '$(2)' | cmp -s - $(1) 2>/dev/null || printf '%s\n' '$(2)' > $(1)
endef

# --- data
data: $(ML100K)/u.data
data/ml-100k/u.data:
	data/fetch-ml100k.sh data/ml-100k
ifneq ($(ML100K),data/ml-100k)
$(ML100K)/u.data:
	@test -f $@ || { echo "ML100K=$(ML100K): $@ not found" >&2; exit 1; }
endif

# --- per-scheme rules (a template instantiated for each scheme)
define SCHEME_RULES
$(ART)/$(1)/split.params: FORCE
	$$(call stamp,$$@,--scheme $(1) --ml100k $(ML100K))
$(ART)/$(1)/mf.params: FORCE
	$$(call stamp,$$@,$(MF_PARAMS))
$(ART)/$(1)/candgen.params: FORCE
	$$(call stamp,$$@,-n $(CAND_N))
$(ART)/$(1)/metrics.params: FORCE
	$$(call stamp,$$@,--bootstrap $(BOOTSTRAP) --seed $(SEED))

$(ART)/$(1)/interactions.mp: $(ML100K)/u.data $(ART)/$(1)/split.params $(BINDIR)/split
	$(BINDIR)/split $(Q) $$$$(cat $(ART)/$(1)/split.params) -o $$@
$(ART)/$(1)/mf.mp: $(ART)/$(1)/interactions.mp $(ART)/$(1)/mf.params $(BINDIR)/mf-train
	$(BINDIR)/mf-train $(Q) $$$$(cat $(ART)/$(1)/mf.params) $$< -o $$@
$(ART)/$(1)/cand-%.mp: $(ART)/$(1)/mf.mp $(ART)/$(1)/interactions.mp $(ART)/$(1)/candgen.params $(BINDIR)/candgen
	$(BINDIR)/candgen $(Q) --threads $(THREADS) --mf $$< --for $$* $$$$(cat $(ART)/$(1)/candgen.params) $(ART)/$(1)/interactions.mp -o $$@
$(ART)/$(1)/base.md: $(ART)/$(1)/cand-test.mp $(ART)/$(1)/interactions.mp $(ART)/$(1)/metrics.params $(BINDIR)/metrics
	$(BINDIR)/metrics $$$$(cat $(ART)/$(1)/metrics.params) --interactions $(ART)/$(1)/interactions.mp --candidates $$< -o $$@
$(ART)/$(1)/base.json: $(ART)/$(1)/cand-test.mp $(ART)/$(1)/interactions.mp $(ART)/$(1)/metrics.params $(BINDIR)/metrics
	$(BINDIR)/metrics --format json $$$$(cat $(ART)/$(1)/metrics.params) --interactions $(ART)/$(1)/interactions.mp --candidates $$< -o $$@
$(ART)/$(1)/valid.md: $(ART)/$(1)/cand-valid.mp $(ART)/$(1)/interactions.mp $(ART)/$(1)/metrics.params $(BINDIR)/metrics
	$(BINDIR)/metrics --part valid $$$$(cat $(ART)/$(1)/metrics.params) --interactions $(ART)/$(1)/interactions.mp --candidates $$< -o $$@

$(RES)/$(1).md: $(ART)/$(1)/base.md $(ART)/$(1)/valid.md
	@mkdir -p $$(@D)
	{ echo "# ITREK results: ML-100K, scheme \`$(1)\`, profile \`$(PROFILE)\`"; echo; \
	  echo "Test part (made by \`make results PROFILE=$(PROFILE)\`; MF: \`mf-train $(MF_PARAMS)\`)."; echo; \
	  cat $(ART)/$(1)/base.md; echo; echo "## Valid part (model selection only)"; echo; cat $(ART)/$(1)/valid.md; } > $$@.tmp && mv $$@.tmp $$@
$(RES)/$(1).json: $(ART)/$(1)/base.json
	@mkdir -p $$(@D)
	cp $$< $$@.tmp && mv $$@.tmp $$@
endef
$(foreach s,$(SCHEMES),$(eval $(call SCHEME_RULES,$(s))))

BASE_OUTPUTS := $(foreach s,$(SCHEMES),$(RES)/$(s).md $(RES)/$(s).json)

# `make base`: the MF baseline rows only, also once the LLM stages exist.
base: $(BASE_OUTPUTS)
	@for s in $(SCHEMES); do echo "== $(RES)/$$s.md"; sed -n '/^| Method/,/^$$/p' $(RES)/$$s.md; done

# `make results`: the whole table. Until the LLM stages land it holds the base rows.
results: deps
	@$(MAKE) --no-print-directory base
