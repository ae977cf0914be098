"""The DiffusionGemma model behind problem 418's `model` handle, and the tiny synthetic language it
was trained on.

`load_model(path, device)` loads `DiffusionGemmaForBlockDiffusion` from a local folder: the bundled
tiny checkpoint (`bundled_checkpoint()`, trained by scripts/train_tiny_model.py) or a local copy of
the released weights. Nothing is downloaded. The model comes back in eval mode with a `PassLog`
attached: forward hooks that record every encoder and decoder pass (what went in, what came out).
The grader reads that log through the worker (`grader_take_log`), never through the solver's code;
a solver could tamper with the log inside its own process, which is why the hidden tests also
check the outputs against transformers' own sampler. Inside the sandbox that sampler is disarmed
(`disarm_sampler`): the exercise is to write it, so `model.generate()` refuses to run there.

The language (vocabulary of 32 ids):
  0 pad, 1 eos, 2 bos, 3 COPY, 4 COUNT, 5 SEP, 6..31 the symbols a..z.
  copy:  [bos, COPY, x1 .. xn, SEP]  ->  x1 .. xn, eos                  (1 <= n <= 16)
  count: [bos, COUNT, s, e, SEP]     ->  s, s+1, .., e (mod 26), eos    (1 <= length <= 24)
"""
from __future__ import annotations

from pathlib import Path

PAD, EOS, BOS, COPY, COUNT, SEP = 0, 1, 2, 3, 4, 5
SYMBOL0 = 6
NUM_SYMBOLS = 26
VOCAB_SIZE = SYMBOL0 + NUM_SYMBOLS
CANVAS_LENGTH = 16
BUNDLED_NAME = "diffusiongemma-tiny"


def bundled_checkpoint() -> Path:
    """The folder of the tiny checkpoint shipped with the project (models/diffusiongemma-tiny)."""
    return Path(__file__).resolve().parents[2] / "models" / BUNDLED_NAME


def model_folder() -> Path:
    """The weights the model handle is built from: $GRADER_DIFFUSIONGEMMA_PATH (a local copy of the
    released model) or the bundled tiny checkpoint. Nothing is ever downloaded."""
    from runner.settings import current

    return Path(current().diffusiongemma_path or bundled_checkpoint()).resolve()


# ------------------------------------------------------------------ the synthetic language

def symbol(i: int) -> int:
    """The token id of symbol `i` (mod 26)."""
    return SYMBOL0 + i % NUM_SYMBOLS


def copy_example(symbols: list[int]) -> tuple[list[int], list[int]]:
    """(prompt, answer) of the copy task; `symbols` are symbol indices 0..25."""
    xs = [symbol(s) for s in symbols]
    return [BOS, COPY, *xs, SEP], [*xs, EOS]


def count_example(start: int, length: int) -> tuple[list[int], list[int]]:
    """(prompt, answer) of the count task: `length` symbols counting up from `start` (mod 26)."""
    xs = [symbol(start + i) for i in range(length)]
    return [BOS, COUNT, xs[0], xs[-1], SEP], [*xs, EOS]


def left_pad(prompts: list[list[int]]) -> tuple["torch.Tensor", "torch.Tensor"]:  # noqa: F821
    """(input_ids, attention_mask) of left-padded prompts: int64 and bool, shape (B, longest)."""
    import torch

    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), PAD, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.bool)
    for row, p in enumerate(prompts):
        ids[row, width - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[row, width - len(p):] = True
    return ids, mask


def tiny_config():
    """The configuration of the tiny model: the real class, every size shrunk."""
    from transformers import DiffusionGemmaConfig

    text = dict(vocab_size=VOCAB_SIZE, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                num_attention_heads=4, num_key_value_heads=2, head_dim=16, global_head_dim=16,
                layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
                sliding_window=64, max_position_embeddings=512, num_experts=2, top_k_experts=1,
                moe_intermediate_size=64, pad_token_id=PAD, eos_token_id=EOS, bos_token_id=BOS)
    # An explicit, tiny vision tower: left out, the config builds a 167M-parameter one.
    vision = dict(model_type="gemma4_vision", hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                  num_attention_heads=1, num_key_value_heads=1, head_dim=8, patch_size=2,
                  position_embedding_size=16)
    return DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=CANVAS_LENGTH,
                                boi_token_id=VOCAB_SIZE + 1, eoi_token_id=VOCAB_SIZE + 2,
                                image_token_id=VOCAB_SIZE + 3)


# ------------------------------------------------------------------ loading and the pass log

class PassLog:
    """Records each encoder pass (tokens encoded) and decoder pass (canvas in, self-conditioning
    logits in, logits out) of one model. Hooks on submodules, so transformers' generate(), which
    calls `self.forward` directly, is recorded too."""

    def __init__(self, model):
        self.model = model
        self.clear()
        model.model.encoder.register_forward_pre_hook(self._encoder, with_kwargs=True)
        model.model.decoder.register_forward_pre_hook(self._decoder, with_kwargs=True)
        model.lm_head.register_forward_hook(self._logits)

    def clear(self) -> None:
        """Forget every recorded pass."""
        self.encoder: list[dict] = []
        self.decoder: list[dict] = []
        self._open = None

    def _encoder(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        embeds = kwargs.get("inputs_embeds")
        shape = tuple((ids if ids is not None else embeds).shape[:2])
        self.encoder.append({"batch": shape[0], "tokens": shape[1]})

    def _decoder(self, module, args, kwargs):
        canvas = kwargs.get("decoder_input_ids", args[0] if args else None)
        sc = kwargs.get("self_conditioning_logits")
        self._open = {"after_encoder": len(self.encoder), "canvas": canvas.detach().to("cpu", copy=True),
                      "sc": None if sc is None else sc.detach().float().to("cpu", copy=True)}
        self.decoder.append(self._open)

    def _logits(self, module, args, output):
        import torch

        if self._open is not None and "logits" not in self._open:
            # the lm_head output, soft-capped as the model's forward does next
            softcap = self.model.final_logit_softcapping
            logits = output.detach().float()
            if softcap is not None:
                logits = softcap * torch.tanh(logits / softcap)
            self._open["logits"] = logits.to("cpu", copy=True)

    def take(self) -> dict:
        """Everything recorded since the last take, then forget it."""
        out = {"encoder_tokens": [e["tokens"] for e in self.encoder],
               "decoder": [{"after_encoder": d["after_encoder"], "canvas": d["canvas"], "sc": d["sc"],
                            "logits": d.get("logits")} for d in self.decoder]}
        self.clear()
        return out


def load_model(path: str | Path | None = None, device: str = "cpu"):
    """`DiffusionGemmaForBlockDiffusion` from a local folder (default: the bundled checkpoint), in
    eval mode on `device`, with a PassLog. Asked for "cuda" with no GPU visible, it raises: a model
    meant for the GPU never moves to the CPU unnoticed."""
    import torch
    from transformers import DiffusionGemmaForBlockDiffusion

    path = Path(path) if path is not None else bundled_checkpoint()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no model at {path} (a folder with config.json and safetensors weights)")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"the model was asked for on {device!r}, and no GPU is visible to torch")
    import json

    hidden = json.loads((path / "config.json").read_text())["text_config"]["hidden_size"]
    # The released weights run in bfloat16 on a GPU; small models stay in exact float32.
    dtype = torch.bfloat16 if device != "cpu" and hidden >= 1024 else torch.float32
    if device == "cpu":
        model = DiffusionGemmaForBlockDiffusion.from_pretrained(str(path), dtype=dtype, local_files_only=True)
    else:  # straight onto the device: staging 50 GB of weights in host memory first does not fit
        try:
            import accelerate  # noqa: F401 - what device_map needs
        except ImportError:
            raise RuntimeError("loading a model onto the GPU needs accelerate: pip install -e \".[gpu]\"") from None
        model = DiffusionGemmaForBlockDiffusion.from_pretrained(str(path), dtype=dtype, device_map=device,
                                                                local_files_only=True)
    model = model.eval()
    log = PassLog(model)
    model.grader_log = log
    # Reached by the grader through the worker (a request the solver's code cannot send).
    model.grader_take_log = log.take
    model.grader_clear_log = log.clear
    model.grader_set_eos = lambda ids: setattr(model.generation_config, "eos_token_id", ids)
    return model


# ------------------------------------------------------------------ disarming inside the sandbox

# transformers' own DiffusionGemma sampler: the generation mixin of the model's class (generate and
# its helpers) and the sampler, stopper and temperature classes of the same module.
SAMPLER_CLASSES = ("DiffusionGemmaGenerationMixin", "EntropyBoundSampler", "DiffusionGemmaAdaptiveStopping",
                   "StableAndConfidentStoppingCriteria", "LinearTemperatureScheduleLogitsProcessor")


def disarm_sampler(model, refuse) -> None:
    """Make transformers' DiffusionGemma sampler call `refuse(what)` instead of running, for this
    process (the sandboxed one: the grader's trusted process keeps it for its own comparisons).

    The model's forward passes, its configs and the grader_* methods are untouched. The classes are
    patched, not the instance, so `type(model).generate(model, ...)` refuses too; a solver that
    rebuilds the sampler from transformers' source is beyond what this can stop."""
    import types

    from transformers.models.diffusion_gemma import generation_diffusion_gemma as module

    for class_name in SAMPLER_CLASSES:
        cls = getattr(module, class_name, None)
        for attr, value in list(vars(cls).items()) if cls is not None else ():
            if isinstance(value, (types.FunctionType, staticmethod, classmethod)):
                setattr(cls, attr, _refusing(f"transformers' DiffusionGemma sampler ({class_name}.{attr})", refuse))


def _refusing(what: str, refuse):
    def refused(*args, **kwargs):
        refuse(what)

    return refused
