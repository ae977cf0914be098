"""Benchmark for problem 418: the reference sampler, transformers' generate() and plain
left-to-right decoding on the same model and prompts, side by side in one process.

    python scripts/bench_capstone.py [--model FOLDER] [--device cpu|cuda] [--repeats 3]

Prints, for each: tokens per decoder forward pass (mean over rows of non-pad generated tokens /
decoder passes the row took part in), decoder passes counted by the model's pass log, generated
tokens per second (median of the repeats), and the ratios to left-to-right decoding.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from runner.modules import import_file  # noqa: E402
from runner.handles.diffusiongemma import EOS, PAD, copy_example, count_example, left_pad, load_model  # noqa: E402


def reference_module():
    path = ROOT / "solutions" / "418-full-inference" / "solution.py"
    return import_file(path, "reference_418")


@torch.no_grad()
def left_to_right(model, input_ids, attention_mask, max_new_tokens):
    """One token per decoder pass, left to right: within a canvas, pass k sees the tokens committed
    at positions < k and noise after them, and commits the argmax at position k; a full canvas is
    encoded into the cache as the sampler does. Canvases stay aligned as in training."""
    from transformers import DynamicCache

    device = model.device
    L, V = model.config.canvas_length, model.config.text_config.vocab_size
    ids, mask = input_ids.to(device), attention_mask.to(device).bool()
    B = ids.shape[0]
    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    to_encode, cached = ids, 0
    out = [ids]
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    passes = torch.zeros(B, device=device)
    for _ in range(-(-max_new_tokens // L)):
        n = to_encode.shape[1]
        model.model.encoder(input_ids=to_encode, attention_mask=mask, past_key_values=cache,
                            position_ids=torch.arange(cached, cached + n, device=device)[None])
        cached += n
        canvas = torch.randint(0, V, (B, L), device=device)
        done = finished.clone()
        for k in range(L):
            passes += ~done
            logits = model(decoder_input_ids=canvas, past_key_values=cache,
                           decoder_attention_mask=F.pad(mask, (0, L), value=True),
                           decoder_position_ids=torch.arange(cached, cached + L, device=device)[None]).logits
            token = torch.where(done, torch.full_like(canvas[:, k], PAD), logits[:, k].argmax(-1))
            canvas[:, k] = token
            done |= token == EOS
            if bool(done.all()):
                canvas[:, k + 1:] = PAD
                break
        finished = done
        out.append(canvas)
        if bool(finished.all()):
            break
        to_encode = canvas
        mask = F.pad(mask, (0, L), value=True)
    seq = torch.cat(out, dim=1)
    tpf = (seq[:, ids.shape[1]:] != PAD).sum(-1) / passes
    return seq.cpu(), tpf.cpu()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: the bundled one)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(1)
    model = load_model(args.model, args.device)
    ref = reference_module()
    # Prompts of the tiny model's language, of the lengths it was trained on: answers of 4 to 25
    # tokens, one or two canvases.
    prompts = [copy_example([11, 19, 15])[0], copy_example([20, 4, 7, 20, 4, 1, 1, 5, 9, 13, 22, 0])[0],
               copy_example([16, 12, 23, 0, 21, 24])[0], copy_example([0, 8, 15, 19, 23, 12, 22, 25, 3, 4, 5, 6, 7])[0],
               count_example(20, 5)[0], count_example(0, 11)[0], count_example(5, 15)[0], count_example(3, 24)[0]]
    ids, mask = left_pad(prompts)
    T = args.max_new_tokens

    def run_reference(seed):
        return ref.generate(model, ids, attention_mask=mask, max_new_tokens=T,
                            generator=torch.Generator().manual_seed(seed))

    def run_transformers(seed):
        torch.manual_seed(seed)
        out = model.generate(ids.to(model.device), attention_mask=mask.to(model.device), max_new_tokens=T)
        return out.sequences.cpu(), out.tokens_per_forward.cpu()

    def run_left_to_right(seed):
        torch.manual_seed(seed)
        return left_to_right(model, ids, mask, T)

    samplers = [("reference generate", run_reference), ("transformers generate()", run_transformers),
                ("left-to-right, 1 token/pass", run_left_to_right)]
    stats = {name: ([], [], []) for name, _ in samplers}
    for _, fn in samplers:
        fn(0)  # warm-up
    for r in range(args.repeats):  # round robin, so that a busy spell of the machine hits all three
        for name, fn in samplers:
            model.grader_clear_log()
            if model.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            seq, tpf = fn(r + 1)
            if model.device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            log = model.grader_take_log()
            tokens = int((seq[:, ids.shape[1]:] != PAD).sum())
            speeds, tpfs, passes = stats[name]
            speeds.append(tokens / seconds)
            tpfs.append(float(tpf.float().mean()))
            passes.append(len(log["decoder"]))
    rows = [(name, statistics.mean(stats[name][1]), statistics.median(stats[name][2]),
             statistics.median(stats[name][0])) for name, _ in samplers]
    base_tpf, base_speed = rows[-1][1], rows[-1][3]
    device = torch.cuda.get_device_name() if model.device.type == "cuda" else "CPU, 1 thread"
    print(f"DiffusionGemma tiny model, {len(prompts)} prompts, max_new_tokens={T}, {device}, "
          f"median of {args.repeats}")
    print(f"{'sampler':30s} {'tokens/forward':>14s} {'decoder passes':>14s} {'tokens/s':>10s} "
          f"{'x tok/fwd':>9s} {'x tok/s':>8s}")
    for name, tpf, p, speed in rows:
        print(f"{name:30s} {tpf:14.2f} {p:14.0f} {speed:10.1f} {tpf / base_tpf:9.2f} {speed / base_speed:8.2f}")
    print(f"reference / transformers: tokens per forward x{rows[0][1] / rows[1][1]:.2f}, "
          f"tokens/s x{rows[0][3] / rows[1][3]:.2f}")


if __name__ == "__main__":
    main()
