"""The training-time monitor (kdzoo/monitor.py): ratio and agreement keys in the log of a real
run, their values against independent formulas, and the --dry-run warning for a weight that is
off by orders of magnitude."""
import pytest
import torch
from tools_helpers import SEED_LOSSES, log_text

from kdzoo.monitor import monitor_values, ratio_warnings


def test_values_match_independent_formulas():
    task = {'loss_cls': torch.tensor(2.0), 'acc': torch.tensor(0.5),
            'aux.loss_ce': [torch.tensor(1.0), torch.tensor(3.0)]}  # lists are summed
    distill = {'distill.loss_kd': torch.tensor(0.6, requires_grad=True)}
    student = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0], [4.0, 0.0, 0.0]])
    teacher = torch.tensor([[9.0, 1.0, 0.0], [5.0, 3.0, 1.0], [1.0, 0.0, 5.0], [0.0, 7.0, 0.0]])
    values = monitor_values(task, distill, {'logits': student}, {'teacher': {'logits': teacher}})
    assert values['distill.ratio_kd'].item() == pytest.approx(0.6 / (2.0 + 4.0))
    assert not values['distill.ratio_kd'].requires_grad
    assert values['distill.agree'].item() == pytest.approx(2 / 4)
    # segmentation logit maps: compared per location on the smaller grid
    s_map = torch.zeros(1, 2, 2, 2)
    s_map[:, 1, 0] = 1.0  # class 1 in the top row, class 0 in the bottom row
    t_map = torch.zeros(1, 2, 4, 4)
    t_map[:, 1] = 1.0  # class 1 everywhere
    values = monitor_values(task, distill, {'logits': s_map}, {'teacher': {'logits': t_map}})
    assert values['distill.agree'].item() == pytest.approx(0.5)
    assert 'distill.agree' not in monitor_values(task, distill, {},
                                                 {'teacher': {'logits': teacher}})
    assert not any('loss' in key for key in values)  # MMEngine sums every key containing 'loss'


def test_agreement_per_teacher_under_their_keys():
    """Several teachers: one agreement per teacher whose logits the step read, each under its
    own key (distill.agree_<name>), from that teacher's logits only."""
    task = {'loss_cls': torch.tensor(1.0)}
    student = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [4.0, 0.0]])  # 0 1 0 0
    cnn = torch.tensor([[9.0, 1.0], [5.0, 3.0], [1.0, 0.0], [0.0, 7.0]])  # 0 0 0 1: 2/4
    vit = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])  # 0 1 0 0: 4/4
    values = monitor_values(task, {}, {'logits': student},
                            {'cnn': {'logits': cnn}, 'vit': {'logits': vit}, 'det': {}})
    assert values['distill.agree_cnn'].item() == pytest.approx(0.5)
    assert values['distill.agree_vit'].item() == pytest.approx(1.0)
    assert set(values) == {'distill.agree_cnn', 'distill.agree_vit'}


def test_ratio_warning_names_the_item_and_its_weight():
    lines = ratio_warnings({'distill.ratio_kd': torch.tensor(2500.0),
                            'distill.ratio_ok': torch.tensor(1.5)}, {'kd': 1000.0, 'ok': 1.0})
    assert lines == ["warning: distill item 'kd': weighted loss / task loss = 2.5e+03, outside "
                     '[0.01, 100]: its weight 1000 is probably off by orders of magnitude (a '
                     'weight near 0.4 would make the two equal)']


def test_keys_are_in_the_log_of_a_two_iteration_run(trained):
    _, work_dir, _, _, _ = trained('kd', SEED_LOSSES['kd'])
    text = log_text(work_dir)[-1]
    assert 'distill.ratio_kd:' in text and 'distill.agree:' in text and 'distill.loss_kd:' in text


def test_dry_run_warns_about_a_weight_off_by_orders_of_magnitude(distill_config, capsys):
    from tools.train import main
    items = dict(losses=[dict(student='logits', teacher='logits', loss=dict(type='KDLoss'),
                              name='kd', weight=1e6)])
    config, _ = distill_config('monitor_dry', items)
    main([config, '--dry-run'])
    out = capsys.readouterr().out
    assert "warning: distill item 'kd': weighted loss / task loss =" in out
    assert 'its weight 1e+06 is probably off by orders of magnitude' in out


def test_bench_monitor_runs_and_reports_a_share():
    from tools.bench_monitor import main
    share = main(['--batch', '4', '--repeats', '1'])
    assert 0 < share < 1
