#!/usr/bin/env python3
"""The Python anchor for the VRAM benchmarks: the same Llama step in PyTorch + transformers + peft, on the same
card in the same run as our C++ numbers (scripts/gpu-vram runs both). Random weights (memory and speed depend only
on shapes). Prints one JSON object per configuration.

  python3 bench/vram_anchor.py --model llama-7b --seq 2048 --batch 1 --modes prefill,lora,lora-checkpoint

Modes: prefill (inference forward, no cache), lora (LoRA r16 on q,k,v,o, AdamW, no checkpointing),
lora-checkpoint (the same with gradient checkpointing), lora-offload (activations saved on the CPU).
"""
import argparse
import json
import sys
import time

import torch

SHAPES = {
    # Llama-2-7B; the C++ zoo's llama-7b has the same shapes.
    "llama-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                     num_key_value_heads=32, vocab_size=32000),
    "llama-1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                     num_key_value_heads=4, vocab_size=32000),
}


def build(name, seq):
    from transformers import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig(**SHAPES[name], max_position_embeddings=max(seq, 4096), rms_norm_eps=1e-5,
                         attn_implementation="sdpa", torch_dtype=torch.bfloat16, use_cache=False)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config)
    torch.set_default_dtype(previous)
    return model


def run(name, mode, seq, batch, warmup, steps, rank):
    model = build(name, seq)
    ids = torch.randint(0, model.config.vocab_size, (batch, seq), device="cuda")
    optimizer = None
    if mode != "prefill":
        from peft import LoraConfig, get_peft_model
        lora = LoraConfig(r=rank, lora_alpha=32, lora_dropout=0.0,
                          target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
        if mode == "lora-checkpoint":
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.enable_input_require_grads()
        model = get_peft_model(model, lora)
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4,
                                      weight_decay=0.01)
    else:
        model.eval()

    def step():
        if optimizer is None:
            with torch.no_grad():
                model(input_ids=ids, use_cache=False)
            return
        if mode == "lora-offload":
            with torch.autograd.graph.save_on_cpu(pin_memory=True):
                loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        else:
            loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    times.sort()
    step_s = times[len(times) // 2]
    result = dict(anchor="pytorch+transformers+peft", model=name, mode=mode, seq=seq, batch=batch,
                  lora_rank=rank if mode != "prefill" else 0, dtype="bf16",
                  peak_allocated_bytes=torch.cuda.max_memory_allocated(),
                  peak_reserved_bytes=torch.cuda.max_memory_reserved(),
                  step_ms=step_s * 1e3, tokens_per_s=batch * seq / step_s,
                  torch=torch.__version__, device=torch.cuda.get_device_name())
    del model, optimizer
    torch.cuda.empty_cache()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="llama-7b", choices=sorted(SHAPES))
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--modes", default="prefill,lora,lora-checkpoint")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("vram_anchor: needs a CUDA GPU")
    for mode in args.modes.split(","):
        try:
            result = run(args.model, mode, args.seq, args.batch, args.warmup, args.steps, args.rank)
        except torch.cuda.OutOfMemoryError as error:
            result = dict(model=args.model, mode=mode, seq=args.seq, batch=args.batch, error=str(error)[:200])
            torch.cuda.empty_cache()
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
