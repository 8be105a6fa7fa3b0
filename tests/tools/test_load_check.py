"""``--resume`` from a checkpoint of another config, or of another ``distill_cfg``, stops before
MMEngine applies it (kdzoo/hooks/load_check.py), with one line naming what differs."""
import re

import pytest
from tools_helpers import SEED_LOSSES, runner_config, write_config

from kdzoo.checkpoint import CheckpointError


def resume(config, checkpoint, tmp_path):
    from tools.train import main
    return main([config, '--resume', checkpoint, '--work-dir', str(tmp_path / 'resumed')])


def test_resume_from_another_models_checkpoint_is_refused(trained, teacher_checkpoint, tmp_path):
    """The teacher's run (another architecture): MMEngine loads none of the model's tensors,
    restores the counter and trains on from random weights (rc 0) without this check."""
    config, _, runner, _, _ = trained('kd', SEED_LOSSES['kd'])
    total = len(runner.model.state_dict())
    with pytest.raises(CheckpointError) as err:
        resume(config, teacher_checkpoint, tmp_path)
    message = str(err.value)
    assert '\n' not in message
    assert message.startswith(
        f'the resume checkpoint {teacher_checkpoint} does not match this config ({config}): it '
        f'fills 0 of the {total} tensors of DistillClassifier (missing keys ({total}): ')
    assert re.search(r'unexpected keys \(\d+\): model\.', message)
    assert message.endswith('Resume only from a checkpoint of this run\'s config (--resume with '
                            'its work dir); to start from these weights instead, train with '
                            'load_from in a new work dir.')


def test_resume_after_a_distill_cfg_change_names_the_change(trained, shapes_data,
                                                            teacher_checkpoint, tmp_path):
    """The same model, another loss weight: the optimizer would load and the run continue with
    another distillation than the checkpoint's; refused, naming the key."""
    _, work_dir, _, _, _ = trained('kd', SEED_LOSSES['kd'])
    losses = [dict(SEED_LOSSES['kd']['losses'][0], weight=3.0)]
    from tools_helpers import TEACHER
    distill_cfg = dict(teacher=dict(config=TEACHER, checkpoint=teacher_checkpoint), losses=losses)
    config = write_config(tmp_path / 'kd_weight3.py',
                          runner_config(shapes_data, tmp_path / 'work', distill_cfg=distill_cfg))
    checkpoint = str(work_dir / 'iter_2.pth')
    with pytest.raises(CheckpointError) as err:
        resume(config, checkpoint, tmp_path)
    assert str(err.value).startswith(
        f'the resume checkpoint {checkpoint} does not match this config ({config}): its '
        "distill_cfg differs: distill_cfg.losses[0].weight: absent in the checkpoint, 3.0 now. ")


def test_resume_with_other_connectors_names_the_tensors(trained, distill_config, tmp_path):
    """Another distill_cfg with connectors: MMEngine fails in the optimizer (a raw ValueError
    about parameter groups); refused first, naming the connector tensors."""
    _, work_dir, _, _, _ = trained('kd', SEED_LOSSES['kd'])
    config, _ = distill_config('lfcc_resume', SEED_LOSSES['lfcc'])
    checkpoint = str(work_dir / 'iter_2.pth')
    with pytest.raises(CheckpointError) as err:
        resume(config, checkpoint, tmp_path)
    message = str(err.value)
    assert message.startswith(f'the resume checkpoint {checkpoint} does not match this config '
                              f'({config}): it fills ')
    assert 'missing keys (' in message and 'distiller.connectors.proj3' in message


def test_resume_of_the_same_run_is_accepted(trained, tmp_path):
    config, work_dir, _, _, _ = trained('kd', SEED_LOSSES['kd'])
    from tools.train import main
    main([config, '--resume', str(work_dir / 'iter_2.pth'), '--work-dir', str(tmp_path / 'r'),
          '--cfg-options', 'train_cfg.max_iters=3'])
    assert (tmp_path / 'r' / 'iter_3.pth').is_file()


def test_resume_of_a_onecycle_run_loads_with_weights_only(distill_config, tmp_path):
    """kdzoo's own training checkpoints, OneCycleLR's saved state included (the quick-start
    schedule, which MMEngine's allow-list lacks), resume through MMEngine's loader with
    ``weights_only=True``: the hardened loader would refuse them otherwise."""
    import torch

    from tools.train import main
    schedule = [dict(type='OneCycleLR', eta_max=0.05, total_steps=4, by_epoch=False)]
    config, work_dir = distill_config('onecycle', SEED_LOSSES['kd'])
    with open(config, 'a') as f:
        f.write(f'param_scheduler = {schedule!r}\n')
    main([config])
    saved = torch.load(work_dir / 'iter_2.pth', weights_only=False)['param_schedulers']
    assert 'OneCycle' in repr(saved[0]['anneal_func'])
    runner = main([config, '--resume'])  # loaded, then nothing left to train
    assert runner.iter == 2


def test_load_from_another_models_checkpoint_is_refused(trained, teacher_checkpoint, tmp_path):
    """MMEngine's ``load_from`` (strict=False) loaded none of the model's tensors and trained from
    the initialisation, a warning in the log only."""
    from tools.train import main
    config, _, runner, _, _ = trained('kd', SEED_LOSSES['kd'])
    total = len(runner.model.state_dict())
    with pytest.raises(CheckpointError) as err:
        main([config, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
              f'load_from={teacher_checkpoint}'])
    assert str(err.value).startswith(
        f'checkpoint {teacher_checkpoint} (load_from) fills 0 of the {total} tensors of '
        'DistillClassifier (0%), under the 50% that strict=False accepts: it is not a checkpoint '
        f'of this model (missing keys ({total}): ')


def test_load_from_a_run_of_the_config_is_accepted(trained, tmp_path):
    from tools.train import main
    config, work_dir, _, _, _ = trained('kd', SEED_LOSSES['kd'])
    runner = main([config, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                   f'load_from={work_dir / "iter_2.pth"}'])
    assert runner.iter == 2


def test_a_checks_opt_out_switched_on_resume_is_not_a_distill_cfg_change():
    """A run started before a check existed resumes with that check's opt-out set; the opt-outs
    change no training step, a loss weight does."""
    from mmengine.config import Config

    from kdzoo.hooks.load_check import distill_cfg_changes
    saved = ("distill_cfg = dict(teacher=dict(config='t.py', checkpoint='t.pth'), "
             "losses=[dict(student='logits', teacher='logits', loss=dict(type='KDLoss'))])")
    now = Config.fromstring(saved, file_format='.py')
    now.distill_cfg.check_teacher_labels = False
    now.distill_cfg.teacher.check_classes = False
    saved = Config.fromstring(saved, file_format='.py')
    assert distill_cfg_changes(saved, now) == []
    now.distill_cfg.losses[0]['weight'] = 2.0
    assert distill_cfg_changes(saved, now) == [
        'distill_cfg.losses[0].weight: absent in the checkpoint, 2.0 now']


def test_resume_with_another_optimizer_type_names_it():
    """An SGD run resumed with AdamW failed in torch with a raw KeyError: 'step'."""
    from mmengine.config import Config

    from kdzoo.hooks.load_check import optimizer_change
    saved = "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1))"
    now = Config.fromstring(saved, file_format='.py')
    saved = Config.fromstring(saved, file_format='.py')
    assert optimizer_change(saved, now) is None
    now.optim_wrapper.optimizer.type = 'AdamW'
    assert optimizer_change(saved, now) == 'SGD in the checkpoint, AdamW now'


def test_optimizer_settings_a_resume_does_not_use_are_named():
    """A resume with another lr trained at the checkpoint's without a word (MMEngine restores the
    optimizer's state)."""
    from mmengine.config import Config

    from kdzoo.hooks.load_check import kept_optimizer_settings
    saved = "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9))"
    now = Config.fromstring(saved, file_format='.py')
    saved = Config.fromstring(saved, file_format='.py')
    assert kept_optimizer_settings(saved, now) == []
    now.optim_wrapper.optimizer.lr = 0.5
    assert kept_optimizer_settings(saved, now) == ['lr 0.05 in the checkpoint, 0.5 now']


def test_a_named_teachers_opt_out_switched_on_resume_is_not_a_change_its_checkpoint_is():
    """Under distill_cfg.teachers, each teacher's opt-outs are its own keys
    (teachers.<name>.check_classes); its checkpoint still counts."""
    from mmengine.config import Config

    from kdzoo.hooks.load_check import distill_cfg_changes
    saved = ("distill_cfg = dict(teachers=dict(vit=dict(config='v.py', checkpoint='v.pth'), "
             "cnn=dict(config='c.py', checkpoint='c.pth')), "
             "losses=[dict(student='logits', teacher='vit:logits', loss=dict(type='KDLoss'))])")
    now = Config.fromstring(saved, file_format='.py')
    now.distill_cfg.teachers.vit.check_classes = False
    now.distill_cfg.teachers.cnn.strict = False
    saved = Config.fromstring(saved, file_format='.py')
    assert distill_cfg_changes(saved, now) == []
    now.distill_cfg.teachers.cnn.checkpoint = 'other.pth'
    assert distill_cfg_changes(saved, now) == [
        "distill_cfg.teachers.cnn.checkpoint: 'c.pth' in the checkpoint, 'other.pth' now"]
