"""Public tests of 418-full-inference: run them on your own solution (they use the bundled model,
or the model of $GRADER_DIFFUSIONGEMMA_PATH; sizes and ids come from its config)."""
import pytest
import torch

from runner.handles.diffusiongemma import copy_example, count_example, left_pad, model_spec
from runner.testing import Generator, Handle

MODEL = Handle("model")  # a DiffusionGemmaForBlockDiffusion: the bundled tiny one unless told otherwise
SPEC = model_spec()  # vocabulary, canvas length, eos ids and pad of the graded model
L, PAD = SPEC["L"], SPEC["pad"]
tiny_only = pytest.mark.skipif(not SPEC["tiny"], reason="needs the bundled tiny model: the prompts are in its "
                                                        "synthetic copy/count language")


def test_one_canvas_of_the_configured_length(submission):
    # Any model: a prompt of ordinary ids, two denoising steps, one canvas of canvas_length tokens.
    prompt = [SPEC["V"] - 1 - i for i in range(5)]
    seq, tpf = submission.generate(MODEL, torch.tensor([prompt]), max_new_tokens=L, max_denoising_steps=2,
                                   generator=Generator(0))
    assert isinstance(seq, torch.Tensor) and seq.dtype == torch.int64, "sequences should be an int64 tensor"
    assert seq.shape == (1, len(prompt) + L), f"shape {tuple(seq.shape)}, expected the prompt and one canvas of {L}"
    assert seq[0, :len(prompt)].tolist() == prompt, "the prompt must come back unchanged"
    assert bool(((seq >= 0) & (seq < SPEC["V"])).all()), "ids outside the vocabulary"
    assert isinstance(tpf, torch.Tensor) and tpf.is_floating_point() and tpf.shape == (1,), \
        "tokens_per_forward should be a float tensor of shape (batch,)"


@tiny_only
def test_copies_a_short_word(submission):
    prompt, answer = copy_example([0, 1, 2])
    seq, tpf = submission.generate(MODEL, torch.tensor([prompt]), max_new_tokens=L, generator=Generator(0))
    assert isinstance(seq, torch.Tensor) and seq.dtype == torch.int64, "sequences should be an int64 tensor"
    assert seq.shape == (1, len(prompt) + L), f"shape {tuple(seq.shape)}"
    assert isinstance(tpf, torch.Tensor) and tpf.is_floating_point() and tpf.shape == (1,), \
        "tokens_per_forward should be a float tensor of shape (batch,)"
    assert seq[0, :len(prompt)].tolist() == prompt, "the prompt must come back unchanged"
    assert seq[0, len(prompt):].tolist() == answer + [PAD] * (L - len(answer)), \
        f"got {seq[0, len(prompt):].tolist()}"
    assert float(tpf[0]) > 1.0, f"tokens_per_forward {tpf.tolist()}"


@tiny_only
def test_counts_across_canvases_in_a_padded_batch(submission):
    # Prompts of different lengths: the shorter one is left-padded.
    prompts = [count_example(0, 20)[0], copy_example([5, 6, 7])[0]]
    answers = [count_example(0, 20)[1], copy_example([5, 6, 7])[1]]
    ids, mask = left_pad(prompts)
    assert not bool(mask.all()), "this batch is meant to be padded"
    seq, tpf = submission.generate(MODEL, ids, attention_mask=mask, max_new_tokens=2 * L, generator=Generator(1))
    assert isinstance(seq, torch.Tensor) and seq.dtype == torch.int64, "sequences should be an int64 tensor"
    assert isinstance(tpf, torch.Tensor) and tpf.is_floating_point() and tpf.shape == (2,), \
        "tokens_per_forward should be a float tensor of shape (batch,)"
    assert seq.shape == (2, ids.shape[1] + 2 * L), f"two canvases: the count needs 21 tokens, a canvas holds {L}"
    for row, answer in enumerate(answers):
        got = seq[row, ids.shape[1]:].tolist()
        assert got == answer + [PAD] * (len(got) - len(answer)), f"row {row}: got {got}"
