"""The one non-finite check: a NaN or Inf stops the run at the step it appears, named.

A NaN teacher (a broken checkpoint, an overflowing layer), a loss argument that divides by zero
or a diverged student would otherwise train to the end with ``loss: nan``. The distiller checks
every item's teacher readout, student value and loss each step with :func:`check_finite`; any
other code that reads tensors of a run (the diagnostics) calls the same function, so every
non-finite value gets the same error.

Only values are checked, never gradients: under AMP (MMEngine's ``AmpOptimWrapper``) the loss
scaler skips a step whose scaled gradients overflow, which is its normal working, not an error
(kdzoo's losses compute in float32, so their values stay finite there).
"""
import torch

HINTS = {
    'teacher': 'the teacher produced it: check its checkpoint (torch.isfinite on every tensor) '
               'and that its inputs are normalised as it was trained',
    'student': 'the student (or its connector) produced it: it diverged, or its weights were '
               'already non-finite; lower the learning rate or check the checkpoint it starts '
               'from',
    'loss': "the loss produced it from finite inputs: check the loss's arguments (a "
            'temperature of 0 divides by zero) and the item weight',
}


class NonFiniteError(FloatingPointError):
    """A NaN or Inf where a run needs finite values; the message names where and which side."""


def tensors(value):
    """The floating-point tensors in ``value`` (a tensor, or nested lists / tuples of them)."""
    if torch.is_tensor(value):
        return [value] if value.is_floating_point() or value.is_complex() else []
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in tensors(v)]
    return []


def all_finite(value):
    """Whether every tensor in ``value`` is finite; one device synchronisation for all of them."""
    found = tensors(value)
    if not found:
        return True
    return bool(torch.stack([torch.isfinite(t.detach()).all() for t in found]).all())


def check_finite(sides, where):
    """Raise :class:`NonFiniteError` when a tensor in ``sides`` holds a NaN or Inf.

    Args:
        sides: ``{side: value}`` in the order the values were produced (e.g. ``teacher``,
            ``student``, ``loss``); the first non-finite side is the one named, since the later
            ones are computed from it.
        where: what was being computed, for the message (e.g. ``"distill item 'kd_0' (student
            taps ['logits'], teacher tap 'logits') at iteration 3"``).
    """
    if all_finite(list(sides.values())):
        return
    side = next(name for name, value in sides.items() if not all_finite(value))
    count = sum(int((~torch.isfinite(t.detach())).sum()) for t in tensors(sides[side]))
    total = sum(t.numel() for t in tensors(sides[side]))
    raise NonFiniteError(
        f'non-finite values (NaN or Inf) in {where}: the {side} side has {count} of {total} '
        f'values non-finite; {HINTS.get(side, "check what computed it")}. Training stopped here '
        'instead of continuing with a NaN loss.')
