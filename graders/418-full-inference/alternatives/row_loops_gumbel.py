"""A correct alternative: per-row Python loops for acceptance, stopping and eos, float64 Gumbel-max
draws, and another drawing order (the fresh tokens of a step before its samples)."""
from __future__ import annotations

import math

import torch
from transformers import DynamicCache


def _entropies(x: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of softmax over the last axis, float64; -inf logits contribute 0."""
    logp = torch.log_softmax(x.double(), dim=-1)
    p = logp.exp()
    return -torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(-1)


@torch.no_grad()
def generate(model, input_ids, attention_mask=None, max_new_tokens=256, max_denoising_steps=48, t_max=0.8,
             t_min=0.4, entropy_bound=0.1, stability_threshold=1, confidence_threshold=0.005, generator=None):
    dev = model.device
    L = int(model.config.canvas_length)
    V = int(model.config.text_config.vocab_size)
    eos = model.generation_config.eos_token_id
    eos_set = {int(eos)} if isinstance(eos, int) else {int(e) for e in eos}
    pad = int(model.generation_config.pad_token_id)
    B, P = input_ids.shape
    mask = torch.ones(B, P, dtype=torch.bool) if attention_mask is None else attention_mask.cpu() != 0
    rows = [[int(t) for t in r] for r in input_ids.tolist()]
    gen_dev = generator.device if generator is not None else torch.device("cpu")

    cache = DynamicCache(config=model.config)
    done = [False] * B
    passes = [0] * B
    pending = input_ids.long().cpu()
    n_cached = 0
    for _ in range(math.ceil(max_new_tokens / L)):
        k = pending.shape[1]
        model.model.encoder(input_ids=pending.to(dev), attention_mask=mask.to(dev), past_key_values=cache,
                            position_ids=torch.arange(n_cached, n_cached + k, device=dev).unsqueeze(0))
        n_cached += k
        dmask = torch.cat([mask, torch.ones(B, L, dtype=torch.bool)], dim=1).to(dev)
        dpos = torch.arange(n_cached, n_cached + L, device=dev).unsqueeze(0)

        canvas = torch.randint(V, (B, L), generator=generator, device=gen_dev).cpu()
        best = canvas.clone()
        sc = None          # processed logits of the previous step (CPU, float32)
        stopped = [False] * B
        history: list[torch.Tensor] = []
        for step in range(max_denoising_steps, 0, -1):
            for b in range(B):
                if not stopped[b] and not done[b]:
                    passes[b] += 1
            logits = model(decoder_input_ids=canvas.to(dev), past_key_values=cache,
                           self_conditioning_logits=None if sc is None else sc.to(dev, model.dtype),
                           decoder_attention_mask=dmask, decoder_position_ids=dpos).logits
            temp = t_min + (t_max - t_min) * step / max_denoising_steps
            proc = logits.float().cpu() / temp

            fresh = torch.randint(V, (B, L), generator=generator, device=gen_dev).cpu()
            u = torch.rand(proc.shape, generator=generator, dtype=torch.float64, device=gen_dev).cpu()
            u = u.clamp(min=torch.finfo(torch.float64).tiny, max=1.0 - 2.0 ** -53)
            sample = (proc.double() - torch.log(-torch.log(u))).argmax(-1)
            ent = _entropies(proc)
            argmax = proc.argmax(-1)

            new_canvas = fresh.clone()
            for b in range(B):
                order = sorted(range(L), key=lambda i: float(ent[b, i]))
                before = 0.0  # entropy of the positions before this one in the order
                for i in order:
                    if before > entropy_bound:
                        break
                    new_canvas[b, i] = sample[b, i]
                    before += float(ent[b, i])
            for b in range(B):
                if stopped[b]:
                    new_canvas[b] = canvas[b]
                    argmax[b] = best[b]
                    proc[b] = sc[b]
            mean_ent = _entropies(proc).mean(-1)
            for b in range(B):
                if stability_threshold == 0:
                    stable = True
                else:
                    recent = history[-stability_threshold:]
                    stable = len(recent) == stability_threshold and all(torch.equal(h[b], argmax[b]) for h in recent)
                if stable and float(mean_ent[b]) < confidence_threshold:
                    stopped[b] = True
            history.append(argmax.clone())
            canvas, best, sc = new_canvas, argmax, proc
            if all(stopped):
                break

        committed = best.clone()
        newly_done = []
        for b in range(B):
            if done[b]:
                committed[b] = pad
                continue
            hit = next((i for i in range(L) if int(committed[b, i]) in eos_set), None)
            if hit is not None:
                committed[b, hit + 1:] = pad
                newly_done.append(b)
        for b in newly_done:
            done[b] = True
        for b in range(B):
            rows[b] += [int(t) for t in committed[b]]
        if all(done):
            break
        pending = committed
        mask = torch.cat([mask, torch.ones(B, L, dtype=torch.bool)], dim=1)

    sequences = torch.tensor(rows, dtype=torch.int64)
    generated = sequences[:, P:]
    tpf = torch.tensor([float((generated[b] != pad).sum()) / max(passes[b], 1) for b in range(B)])
    return sequences, tpf
