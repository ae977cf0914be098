"""Train the tiny DiffusionGemma checkpoint used by problem 418 (models/diffusiongemma-tiny).

    python scripts/train_tiny_model.py [--steps N] [--out FOLDER]

The real `DiffusionGemmaForBlockDiffusion` class, every size shrunk (runner/model.py: tiny_config),
trained on CPU with a fixed seed on the synthetic copy/count language of runner/model.py with the
block-diffusion objective:
  - a training example is a prefix (the prompt plus the answer's earlier canvases, left-padded and
    masked) and the next canvas of the answer (CANVAS_LENGTH = 16 tokens;
    after eos the canvas holds pad);
  - uniform-state noise: one t ~ U[1e-3, 1 - 1e-3] per example, each canvas token replaced by a
    uniformly drawn token with probability t;
  - the decoder reads the encoder's KV cache of the prefix and predicts the clean canvas
    (cross-entropy at every canvas position, weight 1: base SFT);
  - self-conditioning: for half the examples a first, gradient-free pass gives logits that are
    scaled by a random temperature in [0.4, 0.8] and fed back as `self_conditioning_logits`, as
    the sampler does with its processed logits.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from runner.handles.diffusiongemma import (CANVAS_LENGTH, EOS, NUM_SYMBOLS, PAD, VOCAB_SIZE, bundled_checkpoint,  # noqa: E402
                          copy_example, count_example, tiny_config)

SEED = 1234


def random_example(rng: random.Random) -> tuple[list[int], list[int]]:
    if rng.random() < 0.5:
        n = rng.randint(1, 16)
        return copy_example([rng.randrange(NUM_SYMBOLS) for _ in range(n)])
    return count_example(rng.randrange(NUM_SYMBOLS), rng.randint(1, 24))


def make_batch(rng: random.Random, batch: int):
    """(prefix ids, prefix mask, clean canvas) with prefixes left-padded to the longest."""
    prefixes, canvases = [], []
    for _ in range(batch):
        prompt, answer = random_example(rng)
        canvases_needed = math.ceil(len(answer) / CANVAS_LENGTH)
        # mostly canvases that hold answer tokens; now and then the all-pad canvas after them
        j = rng.randrange(canvases_needed + (1 if rng.random() < 0.1 else 0))
        padded = answer + [PAD] * ((j + 1) * CANVAS_LENGTH - len(answer))
        prefixes.append(prompt + padded[: j * CANVAS_LENGTH])
        canvases.append(padded[j * CANVAS_LENGTH:(j + 1) * CANVAS_LENGTH])
    width = max(len(p) for p in prefixes)
    ids = torch.full((batch, width), PAD, dtype=torch.long)
    mask = torch.zeros((batch, width), dtype=torch.bool)
    for row, p in enumerate(prefixes):
        ids[row, width - len(p):] = torch.tensor(p)
        mask[row, width - len(p):] = True
    return ids, mask, torch.tensor(canvases, dtype=torch.long)


def corrupt(clean: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    t = 1e-3 + (1 - 2e-3) * torch.rand(clean.shape[0], 1, generator=gen)
    resample = torch.rand(clean.shape, generator=gen) < t
    noise = torch.randint(0, VOCAB_SIZE, clean.shape, generator=gen)
    return torch.where(resample, noise, clean)


def train(steps: int, batch: int, lr: float, log_every: int = 100):
    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    gen = torch.Generator().manual_seed(SEED)
    from transformers import DiffusionGemmaForBlockDiffusion

    model = DiffusionGemmaForBlockDiffusion(tiny_config())
    model.generation_config.eos_token_id = EOS
    model.generation_config.pad_token_id = PAD
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    start, recent = time.perf_counter(), []
    for step in range(steps):
        ids, mask, clean = make_batch(rng, batch)
        noisy = corrupt(clean, gen)
        dec_mask = F.pad(mask, (0, CANVAS_LENGTH), value=True)
        use_sc = torch.rand(batch, generator=gen) < 0.5
        sc_logits = None
        if use_sc.any():
            with torch.no_grad():
                first = model(input_ids=ids, attention_mask=mask, decoder_input_ids=noisy,
                              decoder_attention_mask=dec_mask).logits
            temperature = 0.4 + 0.4 * torch.rand(batch, 1, 1, generator=gen)
            sc_logits = first / temperature
        out = model(input_ids=ids, attention_mask=mask, decoder_input_ids=noisy, decoder_attention_mask=dec_mask,
                    self_conditioning_logits=sc_logits,
                    self_conditioning_mask=use_sc if sc_logits is not None else None)
        loss = F.cross_entropy(out.logits.reshape(-1, VOCAB_SIZE), clean.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        recent.append(loss.item())
        if (step + 1) % log_every == 0 or step + 1 == steps:
            print(f"step {step + 1:5d}  loss {sum(recent) / len(recent):.4f}  "
                  f"{time.perf_counter() - start:6.1f} s", flush=True)
            final = sum(recent) / len(recent)
            recent = []
    return model, final, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--out", type=Path, default=bundled_checkpoint())
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest and reproducible
    model, final_loss, seconds = train(args.steps, args.batch, args.lr)
    model.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    for f in args.out.iterdir():
        f.chmod(0o644)  # the sandboxed worker reads the files as an unprivileged user
    (args.out / "training.json").write_text(json.dumps({
        "seed": SEED, "steps": args.steps, "batch": args.batch, "lr": args.lr,
        "final_loss": round(final_loss, 4), "train_seconds": round(seconds, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
    }, indent=2) + "\n")
    size = sum(f.stat().st_size for f in args.out.iterdir())
    print(f"final loss {final_loss:.4f}; trained in {seconds:.1f} s; wrote {args.out} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
