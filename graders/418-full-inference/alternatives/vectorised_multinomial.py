"""A correct alternative: vectorised, torch.multinomial on the CPU, the stopper's history as a list,
integer masks, results left on the model's device."""
from __future__ import annotations

import math

import torch
from transformers import DynamicCache


def _entropy(z: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(z.double(), dim=-1)
    p = logp.exp()
    return -torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(-1)


@torch.no_grad()
def generate(model, input_ids, attention_mask=None, max_new_tokens=256, max_denoising_steps=48, t_max=0.8,
             t_min=0.4, entropy_bound=0.1, stability_threshold=1, confidence_threshold=0.005, generator=None):
    device = model.device
    text = model.config.get_text_config(decoder=True)
    L, V = model.config.canvas_length, text.vocab_size
    gc = model.generation_config
    eos = torch.tensor(list(gc.eos_token_id) if isinstance(gc.eos_token_id, (list, tuple)) else [gc.eos_token_id])
    pad = gc.pad_token_id
    B, P = input_ids.shape
    am = torch.ones(B, P, dtype=torch.long) if attention_mask is None else (attention_mask.cpu() != 0).long()
    rng = generator.device if generator is not None else torch.device("cpu")

    cache = DynamicCache(config=text)
    seqs = input_ids.cpu().long()
    ended = torch.zeros(B, dtype=torch.bool)
    n_passes = torch.zeros(B)
    pos, new = 0, seqs
    for _ in range(math.ceil(max_new_tokens / L)):
        model.model.encoder(input_ids=new.to(device), attention_mask=am.to(device), past_key_values=cache,
                            position_ids=torch.arange(pos, pos + new.shape[1], device=device).unsqueeze(0))
        pos += new.shape[1]
        dec_mask = torch.cat([am, torch.ones(B, L, dtype=am.dtype)], dim=1).to(device)
        dec_pos = torch.arange(pos, pos + L, device=device).unsqueeze(0)

        x = torch.randint(0, V, (B, L), generator=generator, device=rng).cpu()
        x_hat = x.clone()
        sc = None
        halted = torch.zeros(B, dtype=torch.bool)
        past: list[torch.Tensor] = []
        for n in range(max_denoising_steps, 0, -1):
            n_passes += (~(halted | ended)).float()
            z = model(decoder_input_ids=x.to(device), past_key_values=cache,
                      self_conditioning_logits=None if sc is None else sc.to(device, model.dtype),
                      decoder_attention_mask=dec_mask, decoder_position_ids=dec_pos).logits.float().cpu()
            zt = z / (t_min + (t_max - t_min) * (n / max_denoising_steps))
            drawn = torch.multinomial(torch.softmax(zt, dim=-1).reshape(-1, V), 1, generator=generator).view(B, L)
            noise = torch.randint(0, V, (B, L), generator=generator, device=rng).cpu()
            ent = _entropy(zt)
            srt, idx = ent.sort(dim=-1)
            take = (srt.cumsum(-1) - srt) <= entropy_bound
            acc = torch.zeros_like(take).scatter(-1, idx, take)
            x_new = torch.where(acc, drawn, noise)
            xhat_new = zt.argmax(-1)
            if halted.any():
                x_new[halted] = x[halted]
                xhat_new[halted] = x_hat[halted]
                zt[halted] = sc[halted]
            if stability_threshold == 0:
                stable = torch.ones(B, dtype=torch.bool)
            elif len(past) < stability_threshold:
                stable = torch.zeros(B, dtype=torch.bool)
            else:
                stable = (torch.stack(past[-stability_threshold:]) == xhat_new).all(-1).all(0)
            past.append(xhat_new)
            halted |= stable & (_entropy(zt).mean(-1) < confidence_threshold)
            x, x_hat, sc = x_new, xhat_new, zt
            if bool(halted.all()):
                break

        commit = x_hat.clone()
        commit[ended] = pad
        is_eos = torch.isin(commit, eos).long()
        after = is_eos.cumsum(-1) - is_eos > 0
        newly = is_eos.bool().any(-1) & ~ended
        commit[newly[:, None] & after] = pad
        ended |= newly
        seqs = torch.cat([seqs, commit], dim=1)
        if bool(ended.all()):
            break
        new = commit
        am = torch.cat([am, torch.ones(B, L, dtype=am.dtype)], dim=1)

    tpf = (seqs[:, P:] != pad).sum(-1).float() / n_passes.clamp(min=1)
    return seqs.to(device), tpf.to(device)
