"""The DiffusionGemma model behind problem 418's `model` handle, and the tiny synthetic language it
was trained on.

`load_model(path, device)` loads `DiffusionGemmaForBlockDiffusion` from a local folder: the bundled
tiny checkpoint (`bundled_checkpoint()`, trained by scripts/train_tiny_model.py) or a local copy of
the released weights. Nothing is downloaded. The model comes back in eval mode with a `PassLog`
attached, off until the grader turns it on (`grader_log_passes`): forward hooks that record a
summary of every encoder and decoder pass (what went in, what came out), bounded by a budget.
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
    from runner.handles import HandleUnavailable
    from runner.settings import current

    given = current().diffusiongemma_path
    folder = Path(given or bundled_checkpoint()).resolve()
    missing = [name for name in ("config.json", "generation_config.json") if not (folder / name).is_file()]
    if missing:
        where = (f"GRADER_DIFFUSIONGEMMA_PATH={given} must name a model folder as save_pretrained writes it"
                 if given else "the bundled checkpoint is incomplete: reinstall the package")
        raise HandleUnavailable(f"{folder}: no {' or '.join(missing)}; {where}")
    return folder


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


# The released model's sizes, special ids and generation config (google/diffusiongemma-26B-A4B-it).
REAL_VOCAB_SIZE = 262_144
REAL_CANVAS_LENGTH = 256
REAL_EOS_IDS = [1, 106, 50]
REAL_GENERATION = dict(max_denoising_steps=48, t_max=0.8, t_min=0.4, stability_threshold=1,
                       confidence_threshold=0.005)
REAL_ENTROPY_BOUND = 0.1


def real_shape_config(vocab_size: int = REAL_VOCAB_SIZE, canvas_length: int = REAL_CANVAS_LENGTH):
    """A configuration of the released model's shape where it shows to a sampler (vocabulary,
    canvas length, special ids) and tiny elsewhere: two layers (one sliding, one full), four
    experts, hidden size 64. Its weights are mostly the 262,144 x 64 embedding (16.8M). A smaller
    vocabulary or canvas gives the same model's layout at a size a quick test can afford."""
    from transformers import DiffusionGemmaConfig

    text = dict(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, head_dim=32, global_head_dim=32,
                layer_types=["sliding_attention", "full_attention"], sliding_window=512,
                max_position_embeddings=8192, num_experts=4, top_k_experts=2, moe_intermediate_size=64,
                pad_token_id=PAD, eos_token_id=REAL_EOS_IDS, bos_token_id=BOS)
    vision = dict(model_type="gemma4_vision", hidden_size=8, intermediate_size=8, num_hidden_layers=1,
                  num_attention_heads=1, num_key_value_heads=1, head_dim=8, patch_size=2,
                  position_embedding_size=16)
    return DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=canvas_length)


def real_shape_generation_config():
    """The released generation config: 48 steps, temperature 0.8 -> 0.4, entropy bound 0.1."""
    from transformers.models.diffusion_gemma.generation_diffusion_gemma import (
        DiffusionGemmaGenerationConfig, EntropyBoundSamplerConfig)

    return DiffusionGemmaGenerationConfig(
        eos_token_id=REAL_EOS_IDS, pad_token_id=PAD, bos_token_id=BOS, return_dict_in_generate=True,
        sampler_config=EntropyBoundSamplerConfig(entropy_bound=REAL_ENTROPY_BOUND), **REAL_GENERATION)


def build_real_shape_model(folder: str | Path, seed: int = 0, **sizes) -> Path:
    """Build a random model of `real_shape_config(**sizes)` (weights drawn with `seed`) and save it
    to `folder` (config, generation config, safetensors). Nothing is downloaded."""
    import torch
    from transformers import DiffusionGemmaForBlockDiffusion

    folder = Path(folder)
    torch.manual_seed(seed)
    model = DiffusionGemmaForBlockDiffusion(real_shape_config(**sizes)).eval()
    model.generation_config = real_shape_generation_config()
    model.save_pretrained(str(folder))
    for path in folder.iterdir():  # the sandbox's user reads them
        path.chmod(0o644)
    return folder


# The limits a model other than the tiny one needs on the CPU, where 418's hidden tests take time
# in proportion to a canvas's logits (vocab_size x canvas_length): at the release's 262,144 x 256
# their slowest call takes 35-50 s on one idle core (two canvases with the pass log on), all calls
# 85-125 s, and the trusted checks a few seconds a test; these leave 5-10x for a slow, shared
# machine. A smaller canvas of logits gets proportionally less, never less than the problem's own.
CPU_LIMITS_AT_REAL_SHAPE = {"time_s": 600, "total_s": 1500, "check_s": 300}


def cpu_limits(folder: str | Path | None = None) -> dict[str, float]:
    """The limits (CPU_LIMITS_AT_REAL_SHAPE, scaled to the model's vocab_size x canvas_length)
    that grading the model of `folder` (default: the graded one) on the CPU needs; none for the
    bundled tiny model, whose needs the problem's own limits were measured on."""
    spec = model_spec(folder)
    if spec["tiny"]:
        return {}
    scale = spec["V"] * spec["L"] / (REAL_VOCAB_SIZE * REAL_CANVAS_LENGTH)
    return {name: value * scale for name, value in CPU_LIMITS_AT_REAL_SHAPE.items()}


def model_spec(folder: str | Path | None = None) -> dict:
    """What the tests need to know of a model without loading it, from its config files: vocab
    size, canvas length, eos ids (a list), pad id, and whether it is the bundled tiny model (the
    one that speaks the synthetic language)."""
    import json

    folder = Path(folder) if folder is not None else model_folder()
    config = json.loads((folder / "config.json").read_text())
    generation = json.loads((folder / "generation_config.json").read_text())
    eos = generation.get("eos_token_id")
    eos = [eos] if isinstance(eos, int) else list(eos or [])
    vocab = config["text_config"]["vocab_size"]
    length = config.get("canvas_length", REAL_CANVAS_LENGTH)
    tiny = (folder / "training.json").is_file() and vocab == VOCAB_SIZE and length == CANVAS_LENGTH
    return {"V": vocab, "L": length, "eos": eos, "pad": generation.get("pad_token_id", PAD), "tiny": tiny}


# ------------------------------------------------------------------ loading and the pass log

class PassLog:
    """Records each encoder pass (tokens encoded) and decoder pass of one model, when turned on.

    Off by default: the grader turns it on (`grader_log_passes`) only where its tests replay a run.
    Hooks on submodules, so transformers' generate(), which calls `self.forward` directly, is
    recorded too. What one decoder pass records stays on the model's device until `take()`, and is
    small next to the logits (a few scalars per position and a slice of the vocabulary):
      canvas    the tokens in, (B, L)
      sc, logits  the self-conditioning logits in and the soft-capped logits out, at the columns
                `cols` only (every column when the vocabulary has at most `max_columns` ids)
      entropy, argmax, p_max  of softmax(logits / T) at each position, T the step's temperature
                (the step is the pass's index since the last encoder pass; the schedule is the
                one given to `turn_on`)
    A budget in bytes bounds the log: a pass that would exceed it is not recorded, and the log
    says so (`overflow`, `dropped`), so a truncated log is never mistaken for a whole one."""

    max_columns = 64

    def __init__(self, model):
        self.model = model
        self.on = False
        self.budget = 0
        self.schedule = (48, 0.8, 0.4)
        self.clear()
        model.model.encoder.register_forward_pre_hook(self._encoder, with_kwargs=True)
        model.model.decoder.register_forward_pre_hook(self._decoder, with_kwargs=True)
        model.lm_head.register_forward_hook(self._logits)

    def turn_on(self, on: bool = True, budget_bytes: int = 256 << 20, max_denoising_steps: int = 48,
                t_max: float = 0.8, t_min: float = 0.4) -> None:
        """Start (or stop) recording, with a fresh log, a budget and the temperature schedule."""
        self.on, self.budget = bool(on), int(budget_bytes)
        self.schedule = (int(max_denoising_steps), float(t_max), float(t_min))
        self.clear()

    def clear(self) -> None:
        """Forget every recorded pass."""
        self.encoder: list[dict] = []
        self.decoder: list[dict] = []
        self._open = None
        self._step = 0
        self.used = 0
        self.dropped = 0

    def _cols(self, vocab: int, device):
        import torch

        if vocab <= self.max_columns:
            return torch.arange(vocab, device=device)
        # evenly spread over the vocabulary, its first and last id included
        return torch.linspace(0, vocab - 1, self.max_columns, device=device).round().long()

    def _encoder(self, module, args, kwargs):
        if not self.on:
            return
        ids = kwargs.get("input_ids", args[0] if args else None)
        embeds = kwargs.get("inputs_embeds")
        shape = tuple((ids if ids is not None else embeds).shape[:2])
        self.encoder.append({"batch": shape[0], "tokens": shape[1]})
        self._step = 0

    def _decoder(self, module, args, kwargs):
        self._open = None
        if not self.on:
            return
        canvas = kwargs.get("decoder_input_ids", args[0] if args else None)
        sc = kwargs.get("self_conditioning_logits")
        vocab = self.model.config.text_config.vocab_size
        cols = self._cols(vocab, canvas.device)
        entry = {"after_encoder": len(self.encoder), "step": self._step, "canvas": canvas.detach().clone(),
                 "sc": None if sc is None else sc.detach()[..., cols.to(sc.device)].float()}
        self._step += 1
        if self._over_budget(entry, per_position=2 * len(cols) + 3):
            return
        self._open = entry
        self.decoder.append(entry)

    def _over_budget(self, entry: dict, per_position: int) -> bool:
        """Charge the entry (and what its logits will add, `per_position` 4-byte values a position)
        to the budget; past it, count the pass as dropped instead."""
        size = entry["canvas"].numel() * (entry["canvas"].element_size() + 4 * per_position)
        if self.dropped or self.used + size > self.budget:
            self.dropped += 1
            return True
        self.used += size
        return False

    def _logits(self, module, args, output):
        import torch

        entry, self._open = self._open, None
        if entry is None:
            return
        n_steps, t_max, t_min = self.schedule
        # the released schedule; a pass beyond the step limit is scored at t_min (the tests fail it anyway)
        temperature = t_min + (t_max - t_min) * max(n_steps - entry["step"], 0) / n_steps
        raw = output.detach()
        entry["logits"] = self._softcapped(raw[..., self._cols(raw.shape[-1], raw.device)].float())
        # softmax(logits / T) over the whole vocabulary, in place on one float32 buffer: at the
        # real shape each such buffer is 268 MB a row
        logp = self._softcapped(raw.float() if raw.dtype != torch.float32 else raw.clone()).div_(temperature)
        entry["argmax"] = logp.argmax(-1)
        logp.sub_(torch.logsumexp(logp, dim=-1, keepdim=True))
        entry["p_max"] = logp.max(-1).values.exp()
        # clamp: a token ruled out with -inf would give 0 * -inf = NaN
        logp.clamp_(min=torch.finfo(logp.dtype).min)
        entry["entropy"] = -torch.linalg.vecdot(logp.exp(), logp)

    def _softcapped(self, logits):
        """`logits` (float32, changed in place) soft-capped as the model's forward does after lm_head."""
        cap = self.model.final_logit_softcapping
        return logits if cap is None else logits.div_(cap).tanh_().mul_(cap)

    def take(self) -> dict:
        """Everything recorded since the last take, moved to the CPU, then forget it."""
        fields = ("after_encoder", "step", "canvas", "sc", "logits", "entropy", "argmax", "p_max")
        cpu = lambda v: v.to("cpu") if hasattr(v, "to") else v  # noqa: E731
        cols = self._cols(self.model.config.text_config.vocab_size, "cpu")
        out = {"encoder_tokens": [e["tokens"] for e in self.encoder],
               "decoder": [{k: cpu(d.get(k)) for k in fields} for d in self.decoder],
               "cols": cols, "overflow": self.dropped > 0, "dropped": self.dropped, "dtype": str(self.model.dtype)}
        self.clear()
        return out


# What a second copy of a model leaves free on a GPU for the activations of both copies (a canvas of
# 256 over 262,144 ids is 0.27 GB of float32 logits a row, and a pass holds a few such tensors).
GPU_HEADROOM_BYTES = 8 << 30
HOST_HEADROOM_BYTES = 4 << 30


def shared_gpu_memory() -> dict:
    """accelerate's `max_memory` for a model loaded beside another process's copy on the same GPU
    (the grader's trusted copy next to the worker's: the released weights twice need 100 GB): the
    GPU memory free now less GPU_HEADROOM_BYTES, the layers that do not fit there in host memory,
    from where accelerate moves each onto the GPU for its pass. Slower, but it fits an 80 GB GPU."""
    import psutil
    import torch

    free, _ = torch.cuda.mem_get_info()
    return {torch.cuda.current_device(): max(free - GPU_HEADROOM_BYTES, 0),
            "cpu": max(psutil.virtual_memory().available - HOST_HEADROOM_BYTES, 0)}


def load_model(path: str | Path | None = None, device: str = "cpu", dtype=None, shared_gpu: bool = False):
    """`DiffusionGemmaForBlockDiffusion` from a local folder (default: the bundled checkpoint), in
    eval mode on `device`, with a PassLog. Asked for "cuda" with no GPU visible, it raises: a model
    meant for the GPU never moves to the CPU unnoticed. `dtype` (a torch dtype) overrides the
    default: bfloat16 for a large model on the GPU, float32 otherwise. `shared_gpu`: a second copy
    on a GPU that a worker's copy already fills (see shared_gpu_memory)."""
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
    if dtype is None:
        dtype = torch.bfloat16 if device != "cpu" and hidden >= 1024 else torch.float32
    if device == "cpu":
        model = DiffusionGemmaForBlockDiffusion.from_pretrained(str(path), dtype=dtype, local_files_only=True)
    else:  # straight onto the device: staging 50 GB of weights in host memory first does not fit
        try:
            import accelerate  # noqa: F401 - what device_map needs
        except ImportError:
            raise RuntimeError("loading a model onto the GPU needs accelerate: pip install -e \".[gpu]\"") from None
        placement = dict(device_map="auto", max_memory=shared_gpu_memory()) if shared_gpu else dict(device_map=device)
        model = DiffusionGemmaForBlockDiffusion.from_pretrained(str(path), dtype=dtype, local_files_only=True,
                                                                **placement)
    model = model.eval()
    log = PassLog(model)
    model.grader_log = log
    # Reached by the grader through the worker (a request the solver's code cannot send).
    model.grader_log_passes = log.turn_on
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
