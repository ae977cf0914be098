"""Public tests of 415-adaptive-stopping: run them on your own solution."""
import torch
import torch.nn.functional as F

from runner.testing import assert_close, assert_shape_dtype


def sure(canvas, vocab=8):
    return 30.0 * F.one_hot(canvas, vocab).float()  # mean entropy about 2e-11 nats


def decide(stop, canvas, logits):
    """The stop decision as a list, once it is a bool tensor with one entry per row."""
    out = stop(canvas, logits)
    assert_shape_dtype(out, (canvas.shape[0],), torch.bool, what="the stop decision")
    return out.tolist()


def test_worked_example(submission):
    stop = submission.StableAndConfident(1, 0.005)
    canvas = torch.tensor([[1, 2, 3], [4, 5, 6]])
    logits = torch.zeros(2, 3, 8)            # row 1: flat, ln 8 = 2.08 nats a token
    logits[0] = sure(canvas[0])
    first = stop(canvas, logits)
    assert_shape_dtype(first, (2,), torch.bool, what="the stop decision")
    assert_close(first, torch.tensor([False, False]), rtol=0, atol=0,
                 what="first call (no earlier canvas to compare with)")
    second = stop(canvas, logits)
    assert_close(second, torch.tensor([True, False]), rtol=0, atol=0,
                 what="second call (row 0 stable and confident, row 1 not confident)")


def test_threshold_two_needs_two_earlier_canvases(submission):
    stop = submission.StableAndConfident(2, 0.005)
    a = torch.tensor([[7, 7, 1, 2]])
    b = torch.tensor([[7, 7, 1, 3]])
    outs = [decide(stop, c, sure(c)) for c in (a, a, b, b, b, a)]
    assert outs == [[False], [False], [False], [False], [True], [False]], f"got {outs}"


def test_reset_forgets_the_history(submission):
    stop = submission.StableAndConfident(1, 0.005)
    canvas = torch.tensor([[1, 2, 3, 4]])
    assert decide(stop, canvas, sure(canvas)) == [False]
    assert decide(stop, canvas, sure(canvas)) == [True]
    stop.reset()
    assert decide(stop, canvas, sure(canvas)) == [False], "reset() must clear the history"
    assert decide(stop, canvas, sure(canvas)) == [True]
