"""Public tests of 418-full-inference: run them on your own solution (they use the bundled model)."""
import torch

from runner.handles.diffusiongemma import CANVAS_LENGTH, copy_example, count_example, left_pad
from runner.testing import Generator, Handle

MODEL = Handle("model")  # the bundled tiny DiffusionGemmaForBlockDiffusion


def test_copies_a_short_word(submission):
    prompt, answer = copy_example([0, 1, 2])
    seq, tpf = submission.generate(MODEL, torch.tensor([prompt]), max_new_tokens=16, generator=Generator(0))
    assert isinstance(seq, torch.Tensor) and seq.dtype == torch.int64, "sequences should be an int64 tensor"
    assert seq.shape == (1, len(prompt) + CANVAS_LENGTH), f"shape {tuple(seq.shape)}"
    assert isinstance(tpf, torch.Tensor) and tpf.is_floating_point() and tpf.shape == (1,), \
        "tokens_per_forward should be a float tensor of shape (batch,)"
    assert seq[0, :len(prompt)].tolist() == prompt, "the prompt must come back unchanged"
    assert seq[0, len(prompt):].tolist() == answer + [0] * (CANVAS_LENGTH - len(answer)), \
        f"got {seq[0, len(prompt):].tolist()}"
    assert float(tpf[0]) > 1.0, f"tokens_per_forward {tpf.tolist()}"


def test_counts_across_canvases_in_a_padded_batch(submission):
    # Prompts of different lengths: the shorter one is left-padded.
    prompts = [count_example(0, 20)[0], copy_example([5, 6, 7])[0]]
    answers = [count_example(0, 20)[1], copy_example([5, 6, 7])[1]]
    ids, mask = left_pad(prompts)
    assert not bool(mask.all()), "this batch is meant to be padded"
    seq, tpf = submission.generate(MODEL, ids, attention_mask=mask, max_new_tokens=32, generator=Generator(1))
    assert isinstance(seq, torch.Tensor) and seq.dtype == torch.int64, "sequences should be an int64 tensor"
    assert isinstance(tpf, torch.Tensor) and tpf.is_floating_point() and tpf.shape == (2,), \
        "tokens_per_forward should be a float tensor of shape (batch,)"
    assert seq.shape == (2, ids.shape[1] + 2 * CANVAS_LENGTH), f"two canvases: the count needs 21 tokens, a canvas holds {CANVAS_LENGTH}"
    for row, answer in enumerate(answers):
        got = seq[row, ids.shape[1]:].tolist()
        assert got == answer + [0] * (len(got) - len(answer)), f"row {row}: got {got}"
