"""The one non-finite check: a NaN or Inf stops the run at the step it appears, named.

A NaN teacher (a broken checkpoint, an overflowing layer), a loss argument that divides by zero
or a diverged student would otherwise train to the end with ``loss: nan``. The distiller checks
every item's teacher readout, student value and loss each step; any other code that reads
tensors of a run (the diagnostics) calls :func:`check_finite`, so every non-finite value gets
the same error.

Without host synchronisation: reading a device tensor's value (``bool()``, ``.item()``) waits
for the device, so one read per item per step would stall a GPU that many times. A step's checks
are :class:`PendingChecks`: each item adds a flag computed on the device (:func:`finite_flag`, no
read); the flags are read once per step together with the step's logged values
(``DistillModel.parse_losses``, adapters/base.py), and only a tripped flag runs the exact,
per-side diagnosis (:func:`check_finite`, the error text).

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


def finite_flag(value):
    """A 0-dim bool tensor on the values' device, ``False`` when a tensor in ``value`` holds a NaN
    or Inf; computed without reading anything to the host (``None`` when ``value`` holds no
    floating-point tensor).

    One reduction per tensor: the sum (in float32 at least) of a tensor holding a NaN is NaN, and
    of one holding an Inf is Inf or NaN. A sum of finite values can still overflow float32 (values
    near 1e38), so ``False`` only says "look closer": :func:`check_finite` decides.
    """
    found = tensors(value)
    if not found:
        return None
    sums = [t.detach().sum(dtype=torch.float32 if t.dtype in (torch.float16, torch.bfloat16)
                           else None) for t in found]
    return torch.isfinite(torch.stack(sums)).all()


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


class PendingChecks:
    """The checks of one step, read later in one host transfer.

    ``add(sides, where)`` records a non-finite check (the arguments of :func:`check_finite`)
    with its :func:`finite_flag`; ``add_flag(flag, report)`` any other check: a 0-dim bool
    tensor on the device (``True``: fine) and the function that raises its error (e.g. a
    label outside a loss's classes, :func:`kdzoo.losses.functional.labelled_pair`).
    ``flags()`` lists the flags to read with the step's other values; ``report(read)`` takes
    the values read (truthy = fine) and runs the report of every tripped check in order until
    one raises (the exact :func:`check_finite` for a non-finite check: it raises
    :class:`NonFiniteError` when it confirms the flag, and passes on an overflowing sum);
    ``verify()`` reads the flags itself (one synchronisation) and reports. Both forget the
    checks, so a check is reported once.
    """

    def __init__(self):
        self.checks = []

    def __len__(self):
        return len(self.checks)

    def add(self, sides, where):
        flag = finite_flag(list(sides.values()))
        if flag is not None:  # no floating-point tensor: nothing can be non-finite
            self.add_flag(flag, lambda: check_finite(sides, where))

    def add_flag(self, flag, report):
        self.checks.append((flag, report))

    def clear(self):
        self.checks = []

    def flags(self):
        """The flags of the checks, in order (0-dim bool tensors on the values' device)."""
        return [flag for flag, _ in self.checks]

    def report(self, read):
        checks, self.checks = self.checks, []
        for (_, report), fine in zip(checks, read, strict=True):
            if not fine:
                report()

    def verify(self):
        if self.checks:
            flags = self.flags()
            device = next((f.device for f in flags if f.device.type != 'cpu'), flags[0].device)
            self.report(torch.stack([f.to(device) for f in flags]).tolist())
