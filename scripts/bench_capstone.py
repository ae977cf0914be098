"""Benchmark for problem 418: the reference sampler, transformers' generate() and an autoregressive
baseline on the same model and prompts, side by side in one process.

    python scripts/bench_capstone.py [--model tiny|real-shape|FOLDER] [--device cpu|cuda]
                                     [--dtype float32|bfloat16] [--steps 48] [--batch 4] [--repeats 3]

--model: `tiny` (the bundled checkpoint, default), `real-shape` (a random model of the released
shape, built into a temporary folder: vocabulary 262,144, canvas 256, two small layers), or a
folder (a local copy of the released weights). The grader's pass log stays off: decoder passes
are counted by a bare pre-hook on the decoder.

Two runs of each diffusion sampler:
- argmax mode (temperatures 2e-6 to 1e-6, one canvas): every tempered distribution is one-hot, so
  every position is accepted with its argmax, and both samplers draw their starting canvas from
  torch's global generator after the same seed (the reference with generator=None). What is left
  to differ is arithmetic: the last line gives the share of generated tokens that are equal. (So
  low a temperature, because a random model's top logits lie close together: at 1e-3 its
  tempered distributions are still spread over several ids.)
- sampling mode (the settings of the release, `--steps` at most): tokens per forward pass.

The autoregressive baseline decodes one token per pass with a KV cache over a growing prefix. It
uses the model's own causal encoder (the stack that writes DiffusionGemma's KV cache) and its
tied lm_head: the same weights and cache an autoregressive model of this size has, each pass one
new token attending to everything before it. It is a cost baseline (time per pass, memory), not
a quality one: the encoder's last hidden state was never trained to predict the next token (so
its rows may write pad and show fewer than one non-pad token per pass).

Per sampler: mean tokens per decoder pass, decoder passes, time per pass (median over repeats),
peak memory during the run above what was resident before (RSS on the CPU, allocated memory on
the GPU) and the token agreement with transformers in argmax mode.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from runner.handles.diffusiongemma import (build_real_shape_model, bundled_checkpoint, copy_example,  # noqa: E402
                                           count_example, left_pad, load_model, model_spec)
from runner.modules import import_file  # noqa: E402

ARGMAX = dict(t_max=2e-6, t_min=1e-6)


def reference_module():
    return import_file(ROOT / "solutions" / "418-full-inference" / "solution.py", "reference_418")


# ------------------------------------------------------------------ the autoregressive baseline

@torch.no_grad()
def autoregressive(model, input_ids, attention_mask, max_new_tokens):
    """Greedy decoding, one token per pass: the causal encoder takes the prompt once, then each new
    token alone, its KV cache growing by one position a pass; the tied lm_head (soft-capped as the
    model's forward does) turns the last hidden state into the next token's logits. Rows stop at
    an eos id of the generation config, and pad after it. Returns (sequences, tokens_per_forward)
    on the CPU, like the samplers."""
    from transformers import DynamicCache

    device = model.device
    eos = model.generation_config.eos_token_id
    eos_ids = torch.tensor([eos] if isinstance(eos, int) else list(eos), device=device)
    pad = model.generation_config.pad_token_id
    ids, mask = input_ids.to(device), attention_mask.to(device).bool()
    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    done = torch.zeros(ids.shape[0], dtype=torch.bool, device=device)
    passes = torch.zeros(ids.shape[0], device=device)
    new, out, cached = ids, [], 0
    for _ in range(max_new_tokens):
        hidden = model.model.encoder(input_ids=new, attention_mask=mask, past_key_values=cache,
                                     position_ids=torch.arange(cached, cached + new.shape[1], device=device)[None]
                                     ).last_hidden_state[:, -1]
        cached += new.shape[1]
        passes += ~done
        token = torch.where(done, pad, softcapped(model, model.lm_head(hidden)).argmax(-1))
        out.append(token)
        done |= torch.isin(token, eos_ids)
        if bool(done.all()):
            break
        new = token[:, None]
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    generated = torch.stack(out, dim=1)
    tpf = (generated != pad).sum(-1) / passes
    return torch.cat([ids, generated], dim=1).cpu(), tpf.cpu()


def softcapped(model, logits):
    cap = model.final_logit_softcapping
    return logits if cap is None else cap * torch.tanh(logits / cap)


# ------------------------------------------------------------------ measuring

class PassCounter:
    """Counts decoder and encoder passes (the grader's pass log stays off: it would cost memory
    and time). The autoregressive baseline's passes are encoder passes."""

    def __init__(self, model):
        self.n = {"decoder": 0, "encoder": 0}
        model.model.decoder.register_forward_pre_hook(lambda *_: self._count("decoder"))
        model.model.encoder.register_forward_pre_hook(lambda *_: self._count("encoder"))

    def _count(self, which: str):
        self.n[which] += 1


class PeakMemory:
    """Peak memory during a block, above what was resident when it began: allocated memory on a
    GPU, the process's RSS on the CPU (sampled every 2 ms by a thread; torch releases the GIL)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.base = self.peak = rss()
            self.running = True
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self.running = False
            self.thread.join()
            self.peak = max(self.peak, rss())
        self.bytes = self.peak - self.base


def rss() -> int:
    """This process's resident memory in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# ------------------------------------------------------------------ the runs

def prompts_for(spec: dict, batch: int, seed: int = 0) -> list[list[int]]:
    """The tiny model's own language; for any other model, ordinary ids of the upper half of the
    vocabulary (no special ids), of different lengths (a left-padded batch)."""
    if spec["tiny"]:
        pool = [copy_example([11, 19, 15])[0], copy_example([20, 4, 7, 20, 4, 1, 1, 5, 9, 13, 22, 0])[0],
                count_example(20, 5)[0], count_example(0, 11)[0], copy_example([16, 12, 23, 0, 21, 24])[0],
                count_example(3, 24)[0], copy_example([0, 8, 15, 19])[0], count_example(5, 15)[0]]
        return [pool[i % len(pool)] for i in range(batch)]
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(spec["V"] // 2, spec["V"], (8 + 5 * i,), generator=g).tolist() for i in range(batch)]


def resolve_model(name: str, tmp: str) -> Path:
    if name == "tiny":
        return bundled_checkpoint()
    if name == "real-shape":
        return build_real_shape_model(Path(tmp) / "diffusiongemma-real-shape")
    return Path(name)


def timed(model, counter, fn, passes_of: str):
    """(sequences, tokens_per_forward, seconds, passes of `passes_of`, peak bytes) of one run."""
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    counter.n = {"decoder": 0, "encoder": 0}
    with PeakMemory(model.device) as memory:
        sync()
        t0 = time.perf_counter()
        seq, tpf = fn()
        sync()
        seconds = time.perf_counter() - t0
    return seq, tpf, seconds, counter.n[passes_of], memory.bytes


def agreement(seq, want, prompt_len: int) -> float:
    """Share of equal generated tokens (over the shorter of the two)."""
    a, b = seq[:, prompt_len:], want[:, prompt_len:]
    n = min(a.shape[1], b.shape[1])
    return float((a[:, :n] == b[:, :n]).float().mean()) if n else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny, real-shape or a model folder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", nargs="+", default=["float32"], choices=["float32", "bfloat16"])
    parser.add_argument("--steps", type=int, default=48, help="max_denoising_steps of the diffusion samplers")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: one canvas")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (on the CPU)")
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = resolve_model(args.model, tmp)
        for dtype in args.dtype:
            bench(folder, args, getattr(torch, dtype))


def bench(folder: Path, args, dtype) -> None:
    spec = model_spec(folder)
    model = load_model(folder, args.device, dtype=dtype)
    counter = PassCounter(model)
    ref = reference_module()
    ids, mask = left_pad(prompts_for(spec, args.batch))
    T = args.max_new_tokens or spec["L"]
    dev = model.device

    def reference(seed, **kw):
        torch.manual_seed(seed)  # the starting canvas from the global generator, as transformers draws it
        return ref.generate(model, ids, attention_mask=mask, max_new_tokens=T, max_denoising_steps=args.steps, **kw)

    def transformers(seed, **kw):
        torch.manual_seed(seed)
        out = model.generate(ids.to(dev), attention_mask=mask.to(dev), max_new_tokens=T,
                             max_denoising_steps=args.steps, **kw)
        return out.sequences.cpu(), out.tokens_per_forward.cpu()

    runs = [("reference, argmax mode", lambda r: reference(r, **ARGMAX)),
            ("transformers, argmax mode", lambda r: transformers(r, **ARGMAX)),
            ("reference", lambda r: reference(r)),
            ("transformers generate()", lambda r: transformers(r)),
            ("autoregressive, 1 token/pass", lambda r: autoregressive(model, ids, mask, T))]
    for _, fn in runs:
        fn(0)  # warm-up
    stats = {name: [] for name, _ in runs}
    for r in range(args.repeats):  # round robin, so that a busy spell of the machine hits all of them
        for name, fn in runs:
            which = "encoder" if name.startswith("autoregressive") else "decoder"
            stats[name].append(timed(model, counter, lambda: fn(r + 1), which))
    argmax_ref, argmax_hf = stats[runs[0][0]], stats[runs[1][0]]
    agree = statistics.mean(agreement(a[0], b[0], ids.shape[1]) for a, b in zip(argmax_ref, argmax_hf))
    device = torch.cuda.get_device_name() if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} thread(s)"
    print(f"\nDiffusionGemma {folder.name} (vocabulary {spec['V']}, canvas {spec['L']}), {dtype}, {device}; "
          f"{len(ids)} prompts, max_new_tokens={T}, max_denoising_steps={args.steps}, median of {args.repeats}")
    print(f"{'run':30s} {'tok/pass':>8s} {'passes':>7s} {'s/pass':>8s} {'tok/s':>8s} {'peak MB':>8s}")
    for name, _ in runs:
        rows = stats[name]
        seconds = statistics.median(s for _, _, s, _, _ in rows)
        passes = statistics.median(p for _, _, _, p, _ in rows)
        tokens = statistics.median(int((seq[:, ids.shape[1]:] != spec["pad"]).sum()) for seq, *_ in rows)
        tpf = statistics.mean(float(tpf.float().mean()) for _, tpf, *_ in rows)
        peak = max(b for *_, b in rows) / 2**20
        print(f"{name:30s} {tpf:8.2f} {passes:7.0f} {seconds / max(passes, 1):8.4f} {tokens / seconds:8.1f} "
              f"{peak:8.1f}")
    print(f"argmax mode: {100 * agree:.1f}% of generated tokens agree (reference vs transformers generate())")


if __name__ == "__main__":
    main()
