"""The distillation step reads from the device once: no host synchronisation per item.

Reading a device tensor's value on the host (``.item()``, ``bool()``, ``.tolist()``, ``.cpu()``,
boolean-mask indexing, ...) waits for the device to finish; on a GPU each one stalls the step.
:class:`HostReads` records every such call on the step's tensors (a ``TorchFunctionMode``, so it
counts on the CPU the reads a GPU would wait for). The optimizer's own reads are left out: torch
keeps Adam's step counters on the host (unless ``capturable``), so they are no device reads.
"""
import re
import traceback
import warnings

import pytest
import torch
from mmengine.optim import OptimWrapper
from torch.overrides import TorchFunctionMode

import kdzoo.adapters.cls  # noqa: F401  (registers DistillClassifier)
import kdzoo.losses  # noqa: F401  (registers every loss)
from kdzoo.registry import build

READS = {torch.Tensor.item, torch.Tensor.__bool__, torch.Tensor.tolist, torch.Tensor.cpu,
         torch.Tensor.numpy, torch.Tensor.__float__, torch.Tensor.__int__,
         torch.Tensor.__index__, torch.equal, torch.Tensor.nonzero, torch.nonzero}


def masks(index):
    index = index if isinstance(index, tuple) else (index,)
    return any(torch.is_tensor(i) and i.dtype == torch.bool for i in index)


class HostReads(TorchFunctionMode):
    """Inside, ``calls`` lists ``(function name, caller)`` of every host read of a tensor."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        read = func in READS or (func is torch.Tensor.__getitem__ and masks(args[1]))
        if read:
            stack = traceback.extract_stack()[:-1]
            if not any('/torch/optim/' in frame.filename for frame in stack):
                caller = stack[-1]
                self.calls.append((func.__name__, f'{caller.filename}:{caller.lineno}'))
        return func(*args, **(kwargs or {}))


STUDENT = dict(type='TimmClassifier', model_name='resnet10t', num_classes=5)
TEACHER = dict(type='TimmClassifier', model_name='vit_tiny_patch16_224', num_classes=5,
               img_size=32, patch_size=8, depth=2, embed_dim=32, num_heads=2)
PROJECTOR = dict(type='Projector', in_channels=256, out_channels=32)
ITEMS = {  # one item of every loss on the readouts it is made for
    'KD': dict(student='logits', teacher='logits', loss=dict(type='KDLoss')),
    'DKD': dict(student='logits', teacher='logits', loss=dict(type='DKDLoss')),
    'OFA': dict(student='logits', teacher='logits', loss=dict(type='OFALoss')),
    'DIST': dict(student='logits', teacher='logits', loss=dict(type='DISTLoss')),
    'DFRA': dict(student='logits', teacher='logits', loss=dict(type='DFRALoss')),
    'MSDCRD': dict(student='dense_logits', teacher='dense_logits', loss=dict(type='MSDCRDLoss')),
    'CWD': dict(student='dense_logits', teacher='dense_logits', loss=dict(type='CWDLoss')),
    'SDD': dict(student='dense_logits', teacher='dense_logits', loss=dict(type='SDDLoss')),
    'MSE': dict(student='stage3', teacher='stage3', loss=dict(type='MSELoss'), connector='proj'),
    'LFCC': dict(student='stage3', teacher='stage3', loss=dict(type='LFCCLoss'),
                 connector='proj'),
    'PKD': dict(student='stage3', teacher='stage3', loss=dict(type='PKDLoss'), connector='proj'),
    'AT': dict(student='stage3', teacher='stage3', loss=dict(type='ATLoss')),
    'RKD': dict(student='stage3', teacher='stage3', loss=dict(type='RKDLoss')),
}


def distill_model(items, monitor=True):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # no teacher checkpoint
        return build(dict(type='DistillClassifier', student=STUDENT, distill_cfg=dict(
            teacher=dict(config=TEACHER), losses=items, connectors=dict(proj=PROJECTOR),
            monitor=monitor))).train()


def batch():
    generator = torch.Generator().manual_seed(0)
    return dict(inputs=torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8,
                                     generator=generator),
                data_samples=torch.tensor([0, 1, 2, 3]))


def step_reads(model):
    """The host reads of one training step (after a first, untimed one)."""
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    model.train_step(batch(), optim)
    with HostReads() as reads:
        log_vars = model.train_step(batch(), optim)
    return reads.calls, log_vars


def test_the_counter_sees_every_kind_of_read():
    x = torch.ones(3)
    with HostReads() as reads:
        bool(x.sum() > 0), x.sum().item(), x.tolist(), float(x.sum()), x[x > 0], x.cpu()
    assert [name for name, _ in reads.calls] == [
        '__bool__', 'item', 'tolist', '__float__', '__getitem__', 'cpu']


@pytest.mark.parametrize('name', sorted(ITEMS))
def test_a_step_reads_the_device_once_whatever_the_loss(name):
    calls, log_vars = step_reads(distill_model([ITEMS[name]]))
    assert len(calls) == 1, calls
    assert calls[0][0] == 'tolist' and 'adapters/base.py' in calls[0][1]  # parse_losses
    # what MMEngine's hooks log are numbers already: they read nothing more
    assert all(isinstance(v, float) for v in log_vars.values()), log_vars


def test_many_items_and_the_monitor_still_read_once():
    items = [dict(item, name=name.lower()) for name, item in ITEMS.items()]
    calls, log_vars = step_reads(distill_model(items))
    assert len(calls) == 1, calls
    assert {f'distill.loss_{n.lower()}' for n in ITEMS} | {'distill.agree'} <= set(log_vars)


def test_the_student_alone_reads_nothing_in_its_step():
    """The baseline: MMEngine's own step leaves its values on the device for its hooks."""
    student = build(STUDENT).train()
    optim = OptimWrapper(torch.optim.AdamW(student.parameters(), lr=1e-3))
    with HostReads() as reads:
        student.train_step(batch(), optim)
    assert reads.calls == []


# --- the one read still stops a non-finite step, with the same error ------------------------
NAN_TEACHER = ("non-finite values (NaN or Inf) in distill item 'kd_0' (student taps ['logits'], "
               "teacher tap 'logits') at iteration 2: the teacher side has 4 of 20 values "
               'non-finite; the teacher produced it')


def nan_teacher_model():
    model = distill_model([ITEMS['KD']])
    with torch.no_grad():
        model.teacher.model.head.bias[1] = float('nan')
    return model


def test_a_nonfinite_item_stops_the_step_before_the_update():
    from kdzoo.finite import NonFiniteError
    model = nan_teacher_model()
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    before = {k: v.clone() for k, v in model.student.state_dict().items()}
    model._steps = 1  # outside a runner: the iteration is the steps taken (named from 1)
    with pytest.raises(NonFiniteError, match=re.escape(NAN_TEACHER)):
        model.train_step(batch(), optim)
    after = model.student.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before
               if not k.endswith(('running_mean', 'running_var', 'num_batches_tracked')))
    assert len(model.distiller.finite_checks) == 0  # reported once


def test_a_loss_forward_never_parsed_is_checked_at_the_next_one():
    from kdzoo.finite import NonFiniteError
    model = nan_teacher_model()
    data = model.data_preprocessor(batch(), True)
    model(**data, mode='loss')  # a loop that sums the losses itself: not read here
    with pytest.raises(NonFiniteError, match=re.escape(NAN_TEACHER.replace('iteration 2',
                                                                           'iteration 1'))):
        model(**data, mode='loss')


def test_a_label_outside_the_classes_is_reported_with_the_steps_read():
    """DKD / OFA check their labels without a read of their own: the flag is read with the
    step's values, and the error is the one the loss raises when called alone."""
    model = distill_model([ITEMS['DKD'], dict(ITEMS['OFA'], name='ofa')])
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    # -100: PyTorch's cross-entropy ignores it, so the student's own loss lets it through
    bad = dict(batch(), data_samples=torch.tensor([0, 1, -100, 3]))
    with HostReads() as reads, pytest.raises(ValueError, match=re.escape(
            'DKDLoss: label -100 is outside [0, 5) for logits (4, 5) (ignore_index=255)')):
        model.train_step(bad, optim)
    assert [name for name, _ in reads.calls][0] == 'tolist'  # the step's read came first
