#!/usr/bin/env python3
"""tests/gpu/peft_bench.py - dev-only baseline for tests/gpu/run.sh: Hugging Face PEFT LoRA
in bf16 on the LLaMA-7B shape (hidden 4096, 32 layers, 32 heads, intermediate 11008, vocab
32000), random weights made on the GPU, batch 4 x 1024, LoRA r=16 alpha=16 dropout 0.05 on
q,k,v,o, AdamW; with gradient checkpointing (as our --recompute) and without. Prints
RESULT lines that run.sh tabulates."""
import argparse
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM


def bench(layers, gc, steps, batch, ctx):
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    cfg = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=layers, num_attention_heads=32,
                      num_key_value_heads=32, vocab_size=32000, max_position_embeddings=2048)
    cfg._attn_implementation = "sdpa"
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg)
    torch.set_default_dtype(torch.float32)
    model.config.use_cache = False
    if gc:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=16, lora_dropout=0.05,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                             task_type="CAUSAL_LM"))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    ids = torch.randint(3, 31000, (batch, ctx), device="cuda")
    times = []
    for s in range(steps):
        torch.cuda.synchronize()
        a = time.time()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        times.append(time.time() - a)
        print(f"peft gc={int(gc)} step {s}: loss {loss.item():.4f} {times[-1]:.3f} s", flush=True)
    best = min(times[1:]) if len(times) > 1 else times[0]
    tag = "peft-gc" if gc else "peft-nogc"
    print(f"RESULT {tag} tokens_per_s={batch * ctx / best:.0f} best_step_s={best:.3f} "
          f"peak_gib={torch.cuda.max_memory_allocated() / 2**30:.2f} "
          f"lora_params={sum(p.numel() for p in params)}", flush=True)
    del model, opt, params
    torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=1024)
    a = ap.parse_args()
    print("torch", torch.__version__, "device", torch.cuda.get_device_name(0), flush=True)
    bench(a.layers, True, a.steps, a.batch, a.ctx)
    bench(a.layers, False, a.steps, a.batch, a.ctx)


if __name__ == "__main__":
    main()
