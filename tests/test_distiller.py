"""The distiller core: naming, weighting, pairing, teacher isolation, errors."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from torch import nn

from helpers import TinyCNN, TwoLevel, randn
from kdzoo.distiller import Distiller, warmup_factor


def make(losses, connectors=None, student=None, teacher=None):
    torch.manual_seed(0)
    student = student or TinyCNN(width=4)
    teacher = teacher or TinyCNN(width=8)
    return Distiller(student, teacher, losses, connectors,
                     student_reserved={'logits'}, teacher_reserved={'logits'})


def step(distiller, x, **ctx):
    with distiller.step():
        s_logits = distiller.student(x)
        t_logits = distiller.run_teacher(None, x)
        losses = distiller.distill_losses({'logits': s_logits}, {'logits': t_logits}, **ctx)
    return losses, s_logits, t_logits


def test_keys_weights_and_values_match_independent_formulas():
    d = make([dict(student='layer2', teacher='layer2', loss=dict(type='MSELoss'), weight=3.0,
                   connector='proj'),
              dict(student='logits', teacher='logits', loss=dict(type='KDLoss', tau=2.0), name='kd')],
             connectors=dict(proj=dict(type='Projector', in_channels=8, out_channels=16)))
    x = randn(4, 3, 8, 8)
    losses, s_logits, t_logits = step(d, x)
    assert set(losses) == {'distill.loss_mse_0', 'distill.loss_kd'}
    with torch.no_grad():
        s_feat = d.connectors['proj'](d.student.layer2(d.student.layer1(x)))
        t_feat = d.teacher.layer2(d.teacher.layer1(x))
    assert torch.allclose(losses['distill.loss_mse_0'], 3.0 * F.mse_loss(s_feat, t_feat), atol=1e-6)
    kd = F.kl_div(F.log_softmax(s_logits / 2, 1), F.softmax(t_logits / 2, 1), reduction='batchmean') * 4
    assert torch.allclose(losses['distill.loss_kd'], kd, atol=1e-6)


def test_gradients_reach_student_and_connector_never_teacher():
    d = make([dict(student='layer2', teacher='layer2', loss=dict(type='MSELoss'), connector='proj')],
             connectors=dict(proj=dict(type='Projector', in_channels=8, out_channels=16)))
    d.train()
    losses, _, _ = step(d, randn(4, 3, 8, 8))
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in d.student.layer1.parameters())
    assert all(p.grad is not None for p in d.connectors.parameters())
    assert all(p.grad is None and not p.requires_grad for p in d.teacher.parameters())


def test_teacher_outside_state_dict_and_parameters_and_kept_in_eval():
    d = make([dict(student='logits', teacher='logits', loss=dict(type='KDLoss'))])
    assert not any(k.startswith('teacher') for k in d.state_dict())
    teacher_params = {id(p) for p in d.teacher.parameters()}
    assert not teacher_params & {id(p) for p in d.parameters()}
    d.train()
    assert d.student.training and not d.teacher.training
    bn = d.teacher.layer1[1]
    before = bn.running_mean.clone()
    step(d, randn(4, 3, 8, 8))
    assert torch.equal(bn.running_mean, before), 'teacher BatchNorm statistics changed'
    d.double()
    assert next(d.teacher.parameters()).dtype == torch.float64


def test_wrong_module_path_lists_closest_paths():
    with pytest.raises(ValueError, match=r"student tap 'layr2'.*'layer2'"):
        make([dict(student='layr2', teacher='layer2', loss=dict(type='MSELoss'))])
    with pytest.raises(ValueError, match=r"teacher tap 'layer2.9'.*layer2\.0"):
        make([dict(student='layer2', teacher='layer2.9', loss=dict(type='MSELoss'))])


def test_sequence_outputs_pair_elementwise_and_length_mismatch_names_both():
    torch.manual_seed(0)
    d = Distiller(TwoLevel(levels=2), TwoLevel(levels=2),
                  [dict(student='neck', teacher='neck', loss=dict(type='MSELoss')),
                   dict(student='head', teacher='head', loss=dict(type='MSELoss'))])
    x = randn(2, 3, 8, 8)
    with d.step():
        s_out = d.student(x)
        t_out = d.run_teacher(None, x)
        losses = d.distill_losses()
    s_levels, t_levels = d.student.neck(d.student.stem(x)), d.teacher.neck(d.teacher.stem(x))
    expect = sum(F.mse_loss(s, t) for s, t in zip(s_levels, t_levels)) / 2
    assert torch.allclose(losses['distill.loss_mse_0'], expect, atol=1e-6)
    # the shared head is called once per level: its records are paired call by call
    expect_head = sum(F.mse_loss(s, t) for s, t in zip(s_out, t_out)) / 2
    assert torch.allclose(losses['distill.loss_mse_1'], expect_head, atol=1e-6)

    d = Distiller(TwoLevel(levels=2), TwoLevel(levels=3),
                  [dict(student='neck', teacher='neck', loss=dict(type='MSELoss'))])
    with d.step(), pytest.raises(ValueError, match='gives 2 tensors but teacher .neck. gives 3'):
        d.student(x)
        d.run_teacher(None, x)
        d.distill_losses()


def test_records_only_between_start_and_end_of_step():
    d = make([dict(student='layer2', teacher='layer2', loss=dict(type='MSELoss'), connector='p')],
             connectors=dict(p=nn.Conv2d(8, 16, 1)))
    x = randn(2, 3, 8, 8)
    d.student(x)
    d.run_teacher(None, x)
    assert all(not calls for calls in d.student_taps.records.values())
    step(d, x)
    assert all(not calls for calls in d.teacher_taps.records.values())


def test_warmup_ramps_weight_from_runner_iteration():
    assert warmup_factor(0, 0) == 1.0
    assert warmup_factor(0, 4) == 0.25 and warmup_factor(3, 4) == 1.0 and warmup_factor(9, 4) == 1.0
    d = make([dict(student='logits', teacher='logits', loss=dict(type='KDLoss'), warmup_iters=4),
              dict(student='logits', teacher='logits', loss=dict(type='KDLoss'), name='full')])
    hub = MessageHub.get_instance('test_warmup')
    hub.update_info('iter', 1)
    try:
        losses, _, _ = step(d, randn(4, 3, 8, 8))
    finally:
        hub.update_info('iter', None)
    assert torch.allclose(losses['distill.loss_kd_0'], 0.5 * losses['distill.loss_full'])


class Fuse(nn.Module):
    """Averages a list of pooled maps through a linear layer (a stand-in for MSDF)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8 + 4, 5)

    def forward(self, maps):
        return self.fc(torch.cat([m.mean((2, 3)) for m in maps], 1))


def test_list_of_student_taps_goes_through_connector():
    with pytest.raises(ValueError, match='need a connector'):
        make([dict(student=['layer1', 'layer2'], teacher='logits', loss=dict(type='KDLoss'))])
    d = make([dict(student=['layer2', 'layer1'], teacher='logits', loss=dict(type='KDLoss'),
                   connector='fuse')], connectors=dict(fuse=Fuse()))
    x = randn(4, 3, 8, 8)
    losses, _, t_logits = step(d, x)
    with torch.no_grad():
        a = d.student.layer1(x)
        fused = d.connectors['fuse']([d.student.layer2(a), a])
    kd = F.kl_div(F.log_softmax(fused / 4, 1), F.softmax(t_logits / 4, 1), reduction='batchmean') * 16
    assert torch.allclose(losses['distill.loss_kd_0'], kd, atol=1e-6)


def test_config_errors_are_named():
    with pytest.raises(ValueError, match="connector 'nope' is not defined"):
        make([dict(student='logits', teacher='logits', loss=dict(type='KDLoss'), connector='nope')])
    with pytest.raises(ValueError, match=r"unknown keys \['wieght'\]"):
        make([dict(student='logits', teacher='logits', loss=dict(type='KDLoss'), wieght=2)])
    with pytest.raises(ValueError, match='share the names'):
        make([dict(student='logits', teacher='logits', loss=dict(type='KDLoss'), name='a'),
              dict(student='logits', teacher='logits', loss=dict(type='KDLoss'), name='a')])
    with pytest.raises(KeyError, match="unknown type 'MSDLoss'"):
        make([dict(student='logits', teacher='logits', loss=dict(type='MSDLoss'))])
    with pytest.raises(ValueError, match='losses is empty'):
        make([])


def test_describe_lists_each_item_with_shapes():
    d = make([dict(student='layer2', teacher='layer2', loss=dict(type='MSELoss'), connector='p')],
             connectors=dict(p=nn.Conv2d(8, 16, 1)))
    x = randn(2, 3, 8, 8)
    with d.step():
        d.student(x)
        d.run_teacher(None, x)
        (line,) = d.describe()
    assert "student ['layer2'] [(2, 8, 4, 4)]" in line and "teacher 'layer2' (2, 16, 4, 4)" in line
    assert 'connector p' in line and 'MSELoss = ' in line
