"""Reference solution: DiffusionGemma's whole sampler (multi-canvas block diffusion inference).

The model is `DiffusionGemmaForBlockDiffusion`: a causal encoder that writes the context into a KV
cache, and a bidirectional decoder that reads that cache and denoises one canvas of
`model.config.canvas_length` tokens at a time. Generation is autoregressive over canvases and
diffusion within a canvas:

  encode the prompt once (prefill)
  for each canvas:
      canvas <- uniform random tokens; no self-conditioning yet
      for cur_step = N, N-1, ..., 1 (at most N decoder passes):
          logits    <- decoder(canvas, cache, self-conditioning logits)
          processed <- logits / T,  T = t_min + (t_max - t_min) * cur_step / N
          sample every position from softmax(processed); argmax canvas = argmax(processed)
          accept the lowest-entropy positions while sum - max <= entropy_bound (EB-sampler);
          accepted positions take the sample, every other position gets a fresh uniform token
          rows that already stopped keep their canvas, argmax canvas and logits
          stop a row when its argmax canvas repeats the last `stability_threshold` ones and the
          mean entropy of its processed logits is below `confidence_threshold`
          self-conditioning logits <- processed
      commit the ARGMAX canvas; tokens after eos become pad; rows finished earlier get all pad
      stop when every row has finished; otherwise encode the committed canvas into the cache
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform_tokens(shape, vocab_size: int, generator, device) -> torch.Tensor:
    # Drawn where the generator lives (the model's device when the caller gives a generator there).
    gen_device = generator.device if generator is not None else device
    return torch.randint(0, vocab_size, shape, generator=generator, device=gen_device).to(device)


def _sample(probs: torch.Tensor, generator) -> torch.Tensor:
    """One token per position from probs (B, L, V): torch.multinomial over the flattened rows, the
    draw transformers' generate() makes, so that the same generator state picks the same tokens
    (also among the exact ties of a bf16 model's logits)."""
    B, L, V = probs.shape
    gen_device = generator.device if generator is not None else probs.device
    token = torch.multinomial(probs.reshape(B * L, V).to(gen_device), 1, generator=generator)
    return token.view(B, L).to(probs.device)


def _entropy_and_probs(processed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(entropy in nats (B, L), probabilities (B, L, V)) of softmax(processed), in one pass."""
    logp = torch.log_softmax(processed, dim=-1)
    probs = logp.exp()
    # clamp: a token ruled out with -inf would give 0 * -inf = NaN
    entropy = -torch.linalg.vecdot(probs, logp.clamp_(min=torch.finfo(logp.dtype).min))
    return entropy, probs


@torch.no_grad()
def generate(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    max_new_tokens: int = 256,
    max_denoising_steps: int = 48,
    t_max: float = 0.8,
    t_min: float = 0.4,
    entropy_bound: float = 0.1,
    stability_threshold: int = 1,
    confidence_threshold: float = 0.005,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate with DiffusionGemma's sampler.

    model: a DiffusionGemmaForBlockDiffusion (eos/pad ids in model.generation_config).
    input_ids: (B, P) int64 prompts, left-padded; attention_mask: (B, P) bool/int, 0 at pads.
    Returns (sequences, tokens_per_forward): sequences (B, P + C * canvas_length) int64 on the CPU,
    the prompt followed by the C committed canvases (C <= ceil(max_new_tokens / canvas_length));
    tokens_per_forward (B,) float32: non-pad generated tokens / decoder passes of that row.
    """
    from transformers import DynamicCache

    device = model.device
    L = model.config.canvas_length
    V = model.config.text_config.vocab_size
    eos = model.generation_config.eos_token_id
    pad = model.generation_config.pad_token_id
    eos_ids = torch.tensor([eos] if isinstance(eos, int) else list(eos or []), device=device)
    N = max_denoising_steps

    input_ids = input_ids.to(device)
    B, P = input_ids.shape
    if attention_mask is None:
        attention_mask = torch.ones(B, P, dtype=torch.bool, device=device)
    attention_mask = attention_mask.to(device).bool()

    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    sequences = input_ids
    to_encode = input_ids  # tokens not yet in the cache: the prompt, then each committed canvas
    cached = 0  # positions already in the cache
    finished = torch.zeros(B, dtype=torch.bool, device=device)  # rows that produced eos
    passes = torch.zeros(B, dtype=torch.long, device=device)  # decoder passes each row took part in

    for _ in range(math.ceil(max_new_tokens / L)):
        # Encode only what the cache lacks. The 2D mask covers cache + new tokens; positions run on
        # from what is cached (pads included: the mask, not the positions, hides them).
        n = to_encode.shape[1]
        model.model.encoder(
            input_ids=to_encode,
            attention_mask=attention_mask,
            past_key_values=cache,
            position_ids=torch.arange(cached, cached + n, device=device).unsqueeze(0),
        )
        cached += n
        canvas = _uniform_tokens((B, L), V, generator, device)
        # The canvas sees itself fully. The model's 4D masks are built once per canvas, not per pass.
        decoder_mask = model.model.decoder.create_diffusion_decoder_attention_mask(
            config=model.config, inputs_embeds=canvas.unsqueeze(-1), past_key_values=cache,
            decoder_attention_mask=F.pad(attention_mask, (0, L), value=True))
        decoder_positions = torch.arange(cached, cached + L, device=device).unsqueeze(0)

        argmax_canvas = canvas
        sc_logits = None  # passed to the model in its own dtype, as transformers does
        processed = None
        mean_entropy = torch.zeros(B, device=device)
        stopped = torch.zeros(B, dtype=torch.bool, device=device)
        history = None  # the last `stability_threshold` argmax canvases, oldest first

        for cur_step in range(N, 0, -1):
            passes += ~(stopped | finished)
            logits = model(decoder_input_ids=canvas, past_key_values=cache, self_conditioning_logits=sc_logits,
                           decoder_attention_mask=decoder_mask, decoder_position_ids=decoder_positions).logits
            temperature = t_min + (t_max - t_min) * cur_step / N
            new_processed = logits.float() / temperature
            entropy, probs = _entropy_and_probs(new_processed)  # the entropy once a step
            sampled = _sample(probs, generator)
            del logits, probs  # the next pass's take their place
            new_argmax = new_processed.argmax(-1)

            # Entropy-bounded acceptance: sorted ascending, accept while cumsum - current <= bound.
            sorted_h, order = entropy.sort(dim=-1)
            keep_sorted = sorted_h.cumsum(-1) - sorted_h <= entropy_bound
            accepted = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
            # Renoise everything not accepted, even positions accepted at an earlier step.
            next_canvas = torch.where(accepted, sampled, _uniform_tokens((B, L), V, generator, device))

            # Rows that stopped earlier are frozen: same canvas, argmax canvas, logits and entropy.
            # (torch.where on every step: asking whether any row stopped would wait for the device.)
            frozen = stopped[:, None]
            next_canvas = torch.where(frozen, canvas, next_canvas)
            new_argmax = torch.where(frozen, argmax_canvas, new_argmax)
            if processed is not None:
                new_processed = torch.where(frozen[..., None], processed, new_processed)
            mean_entropy = torch.where(stopped, mean_entropy, entropy.mean(-1))

            # Adaptive stopping: stable (equal to each of the last k argmax canvases) and confident.
            if stability_threshold == 0:
                stable = torch.ones(B, dtype=torch.bool, device=device)
            else:
                if history is None:
                    history = torch.full((stability_threshold, B, L), -1, dtype=torch.long, device=device)
                stable = (history == new_argmax[None]).all(-1).all(0)
                history = torch.cat([history[1:], new_argmax[None]])
            stopped |= stable & (mean_entropy < confidence_threshold)

            canvas, argmax_canvas, processed = next_canvas, new_argmax, new_processed
            sc_logits = processed.to(model.dtype)
            if bool(stopped.all()):
                break

        # Commit the argmax canvas, then the end-of-sequence bookkeeping.
        # (torch.where, not boolean-index writes: those wait for the device to count the hits.)
        committed = torch.where(finished[:, None], pad, argmax_canvas)  # rows that ended earlier: pad
        has_eos = torch.isin(committed, eos_ids)
        after_eos = has_eos.long().cumsum(-1) - has_eos.long() > 0  # strictly after the first eos
        newly = has_eos.any(-1) & ~finished
        committed = torch.where(newly[:, None] & after_eos, pad, committed)
        finished |= newly
        sequences = torch.cat([sequences, committed], dim=-1)
        if bool(finished.all()):
            break
        to_encode = committed
        attention_mask = F.pad(attention_mask, (0, L), value=True)

    generated = sequences[:, P:]
    tokens_per_forward = (generated != pad).sum(-1).float() / passes.clamp(min=1).float()
    return sequences.cpu(), tokens_per_forward.cpu()
