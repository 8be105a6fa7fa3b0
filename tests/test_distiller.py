"""The distiller core: naming, weighting, pairing, teacher isolation, errors."""
import pytest
import torch
import torch.nn.functional as F
from helpers import TinyCNN, TwoLevel, randn
from mmengine.logging import MessageHub
from torch import nn

from kdzoo.distiller import Distiller, parse_items, warmup_factor


def make(losses, connectors=None, student=None, teacher=None):
    torch.manual_seed(0)
    student = student or TinyCNN(width=4)
    teacher = teacher or TinyCNN(width=8)
    return Distiller(student, teacher, parse_items(losses), connectors,
                     student_reserved={'logits'}, teacher_reserved={'logits'})


def run_teacher(distiller, x):
    """The teacher's forward as the adapter skeleton runs it: without grad."""
    with torch.no_grad():
        return distiller.teacher(x)


def step(distiller, x, iteration=0, **ctx):
    with distiller.step():
        s_logits = distiller.student(x)
        t_logits = run_teacher(distiller, x)
        losses = distiller.distill_losses({'logits': s_logits}, {'teacher': {'logits': t_logits}},
                                          iteration=iteration, **ctx)
    return losses, s_logits, t_logits


def test_keys_weights_and_values_match_independent_formulas():
    d = make([dict(student='layer2', teacher='layer2', loss=dict(type='MSELoss'), weight=3.0,
                   connector='proj'),
              dict(student='logits', teacher='logits', loss=dict(type='KDLoss', tau=2.0),
                   name='kd')],
             connectors=dict(proj=dict(type='Projector', in_channels=8, out_channels=16)))
    x = randn(4, 3, 8, 8)
    losses, s_logits, t_logits = step(d, x)
    assert set(losses) == {'distill.loss_mse_0', 'distill.loss_kd'}
    with torch.no_grad():
        s_feat = d.connectors['proj'](d.student.layer2(d.student.layer1(x)))
        t_feat = d.teacher.layer2(d.teacher.layer1(x))
    assert torch.allclose(losses['distill.loss_mse_0'], 3.0 * F.mse_loss(s_feat, t_feat), atol=1e-6)
    kd = F.kl_div(F.log_softmax(s_logits / 2, 1), F.softmax(t_logits / 2, 1),
                  reduction='batchmean') * 4
    assert torch.allclose(losses['distill.loss_kd'], kd, atol=1e-6)


def test_gradients_reach_student_and_connector_never_teacher():
    d = make([dict(student='layer2', teacher='layer2', loss=dict(type='MSELoss'),
                   connector='proj')],
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
    d = Distiller(TwoLevel(levels=2), TwoLevel(levels=2), parse_items(
        [dict(student='neck', teacher='neck', loss=dict(type='MSELoss')),
         dict(student='head', teacher='head', loss=dict(type='MSELoss'))]))
    x = randn(2, 3, 8, 8)
    with d.step():
        s_out = d.student(x)
        t_out = run_teacher(d, x)
        losses = d.distill_losses(iteration=0)
    s_levels, t_levels = d.student.neck(d.student.stem(x)), d.teacher.neck(d.teacher.stem(x))
    expect = sum(F.mse_loss(s, t) for s, t in zip(s_levels, t_levels)) / 2
    assert torch.allclose(losses['distill.loss_mse_0'], expect, atol=1e-6)
    # the shared head is called once per level: its records are paired call by call
    expect_head = sum(F.mse_loss(s, t) for s, t in zip(s_out, t_out)) / 2
    assert torch.allclose(losses['distill.loss_mse_1'], expect_head, atol=1e-6)

    d = Distiller(TwoLevel(levels=2), TwoLevel(levels=3),
                  parse_items([dict(student='neck', teacher='neck', loss=dict(type='MSELoss'))]))
    with d.step(), pytest.raises(ValueError, match='gives 2 tensors but teacher .neck. gives 3'):
        d.student(x)
        run_teacher(d, x)
        d.distill_losses(iteration=0)


def test_records_only_between_start_and_end_of_step():
    d = make([dict(student='layer2', teacher='layer2', loss=dict(type='MSELoss'), connector='p')],
             connectors=dict(p=nn.Conv2d(8, 16, 1)))
    x = randn(2, 3, 8, 8)
    d.student(x)
    run_teacher(d, x)
    assert all(not calls for calls in d.student_taps.records.values())
    step(d, x)
    assert all(not calls for calls in d.teacher_taps['teacher'].records.values())


def test_warmup_ramps_weight_from_the_iteration_given():
    assert warmup_factor(0, 0) == 1.0
    assert warmup_factor(0, 4) == 0.25 and warmup_factor(3, 4) == 1.0 and warmup_factor(9, 4) == 1.0
    d = make([dict(student='logits', teacher='logits', loss=dict(type='KDLoss'), warmup_iters=4),
              dict(student='logits', teacher='logits', loss=dict(type='KDLoss'), name='full')])
    losses, _, _ = step(d, randn(4, 3, 8, 8), iteration=1)
    assert torch.allclose(losses['distill.loss_kd_0'], 0.5 * losses['distill.loss_full'])


def test_the_step_reads_no_mmengine_global(monkeypatch):
    """The iteration is the caller's: the runner's message hub is never read by the distiller
    (the adapter skeleton reads it once per step)."""
    def refuse(*args, **kwargs):
        raise AssertionError('the distiller read MMEngine\'s message hub')
    monkeypatch.setattr(MessageHub, 'get_current_instance', refuse)
    d = make([dict(student='logits', teacher='logits', loss=dict(type='KDLoss'), warmup_iters=4),
              dict(student='logits', teacher='logits', loss=dict(type='KDLoss'), name='full')])
    x = randn(4, 3, 8, 8)
    losses, _, _ = step(d, x, iteration=0)
    assert torch.allclose(losses['distill.loss_kd_0'], 0.25 * losses['distill.loss_full'])
    with d.step():
        d.describe({'logits': d.student(x)}, {'teacher': {'logits': run_teacher(d, x)}},
                   iteration=0)


def test_tap_names_are_the_items_each_once_in_item_order():
    d = make([dict(student=['layer2', 'logits'], teacher='logits', loss=dict(type='KDLoss'),
                   connector='fuse'),
              dict(student='layer2', teacher='layer1', loss=dict(type='MSELoss'),
                   connector='p')],
             connectors=dict(fuse=nn.Identity(), p=nn.Conv2d(8, 4, 1)))
    assert d.tap_names == {'student': ['layer2', 'logits'],
                           'teachers': {'teacher': ['logits', 'layer1']}}
    assert d.readout_names == {'student': ['logits'], 'teachers': {'teacher': ['logits']}}
    assert list(d.student_taps.records) == ['layer2']
    assert list(d.teacher_taps['teacher'].records) == ['layer1']


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
    kd = F.kl_div(F.log_softmax(fused / 4, 1), F.softmax(t_logits / 4, 1),
                  reduction='batchmean') * 16
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
        run_teacher(d, x)
        (line,) = d.describe(iteration=0)
    assert "student ['layer2'] [(2, 8, 4, 4)]" in line and "teacher 'layer2' (2, 16, 4, 4)" in line
    assert 'connector p' in line and 'MSELoss = ' in line


KD = dict(student='logits', teacher='logits', loss=dict(type='KDLoss'))


@pytest.mark.parametrize('losses, error, message', [
    (dict(KD), TypeError, 'distill_cfg.losses must be a list of item dicts, got one dict; wrap it '
     'in a list: losses=[dict(student=..., teacher=..., loss=dict(type=...))]'),
    ([KD, 'kd'], TypeError, "distill item 1 must be a dict(student=..., teacher=..., "
     "loss=dict(type=...)), got str 'kd'"),
    ([dict(KD, loss='KDLoss')], TypeError, "distill item 0: loss must be a dict, got the string "
     "'KDLoss'; write loss=dict(type='KDLoss')"),
    ([dict(KD, loss=dict(tau=2))], TypeError, "distill item 0: loss must be a dict with a type, "
     "e.g. loss=dict(type='KDLoss', tau=4.0), got {'tau': 2}"),
    ([dict(KD, weight='x2')], ValueError, "distill item 0: weight must be a finite number >= 0, "
     "got 'x2'"),
    ([dict(KD, weight=float('nan'))], ValueError, 'distill item 0: weight must be a finite number '
     '>= 0, got nan'),
    ([dict(KD, weight=-1.0)], ValueError, 'distill item 0: weight must be a finite number >= 0, '
     'got -1.0'),
    ([dict(KD, warmup_iters=-5)], ValueError, 'distill item 0: warmup_iters must be an integer '
     '>= 0, got -5'),
    ([dict(KD, warmup_iters=2.5)], ValueError, 'distill item 0: warmup_iters must be an integer '
     '>= 0, got 2.5'),
    ([dict(KD, loss=dict(type='KDLoss', tau=0))], ValueError, "distill item 0 ('kd_0'): KDLoss: "
     'tau must be a positive number (the softmax temperature, 4.0 by default), got 0'),
    ([dict(KD, loss=dict(type='LFCCLoss', tau=-0.1))], ValueError, "distill item 0 ('lfcc_0'): "
     'LFCCLoss: tau must be a positive number (the InfoNCE temperature, 0.1 by default), got -0.1'),
], ids=['losses-dict', 'item-string', 'loss-string', 'loss-no-type', 'weight-string', 'weight-nan',
        'weight-negative', 'warmup-negative', 'warmup-float', 'kd-tau-0', 'lfcc-tau-negative'])
def test_bad_items_are_named_when_built(losses, error, message):
    import re
    with pytest.raises(error, match='^' + re.escape(message) + '$'):
        make(losses)


def nan_bias(model):
    """``model`` with one NaN in its classifier bias (one broken tensor is enough)."""
    with torch.no_grad():
        model.fc.bias[1] = float('nan')
    return model


def all_nan(model):
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float('nan'))
    return model


def test_nonfinite_teacher_stops_the_step_naming_item_taps_side_and_iteration():
    from kdzoo.finite import NonFiniteError
    for teacher in (nan_bias(TinyCNN(width=8)), all_nan(TinyCNN(width=8))):
        d = make([KD], teacher=teacher)
        with pytest.raises(NonFiniteError) as err:
            step(d, randn(4, 3, 8, 8), iteration=6)
        assert str(err.value).startswith(
            "non-finite values (NaN or Inf) in distill item 'kd_0' (student taps ['logits'], "
            "teacher tap 'logits') at iteration 7: the teacher side has ")
        assert 'check its checkpoint' in str(err.value)


def test_nonfinite_student_and_loss_sides_are_told_apart():
    from kdzoo.finite import NonFiniteError
    d = make([KD], student=nan_bias(TinyCNN(width=4)))
    with pytest.raises(NonFiniteError, match=r'iteration 1: the student side has 4 of 20 values'):
        step(d, randn(4, 3, 8, 8))
    d = make([KD])
    d.losses['kd_0'].tau = 0.0  # past the build-time check: a loss that divides by zero
    message = (r'the loss side has 1 of 1 values non-finite; the '
               r"loss produced it from finite inputs: check the loss's")
    with pytest.raises(NonFiniteError, match=message):
        step(d, randn(4, 3, 8, 8))


def test_describe_refuses_a_nonfinite_teacher():
    """--dry-run prints through describe(): a NaN there is the same error, not '= nan'."""
    from kdzoo.finite import NonFiniteError
    d = make([KD], teacher=nan_bias(TinyCNN(width=8)))
    x = randn(2, 3, 8, 8)
    with d.step(), pytest.raises(NonFiniteError, match="the teacher side"):
        d.describe({'logits': d.student(x)}, {'teacher': {'logits': run_teacher(d, x)}},
                   iteration=0)


def test_finite_steps_under_autocast_pass_the_check():
    """Under mixed precision the readouts are half precision and the losses float32: a finite
    step passes (the check reads values, never the scaled gradients a loss scaler skips)."""
    d = make([KD, dict(student='layer2', teacher='layer2', loss=dict(type='MSELoss'),
                       connector='p')], connectors=dict(p=nn.Conv2d(8, 16, 1)))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses, s_logits, _ = step(d, randn(4, 3, 8, 8))
    assert s_logits.dtype == torch.bfloat16
    assert all(torch.isfinite(v) for v in losses.values())
