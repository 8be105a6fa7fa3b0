"""Any MMEngine entry point (docs/entry_points.md): the explicit model form distils under a plain
``Runner.from_cfg(cfg).train()`` for classification, mmseg and mmdet; a config with
``distill_cfg`` whose model is not wrapped stops before training (kdzoo/guard.py, applied by
kdzoo/patches.py), also when nothing of kdzoo is imported by the config (the start-up hook
applies the guard)."""
import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from kdzoo import patches
from kdzoo.guard import DistillCfgIgnoredError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPLICIT = '''\
_base_ = {base!r}
model = dict(_delete_=True, type={model_type!r},
             student={{{{_base_.model}}}}, distill_cfg={{{{_base_.distill_cfg}}}}{preprocessor})
'''
PREPROCESSOR = ',\n             data_preprocessor={{_base_.model.data_preprocessor}}'


def config_path(*parts):
    return os.path.join(REPO, 'configs', *parts)


def explicit_config(tmp_path, base, model_type, extra=''):
    """Write the explicit form of the distilling config ``base`` (with the student's data
    preprocessor for mmseg / mmdet, as docs/entry_points.md says); returns it parsed."""
    path = tmp_path / 'explicit.py'
    preprocessor = '' if model_type == 'kdzoo.DistillClassifier' else PREPROCESSOR
    path.write_text(EXPLICIT.format(base=base, model_type=model_type,
                                    preprocessor=preprocessor) + extra)
    return Config.fromfile(str(path))


def train_plain(cfg, options, work_dir):
    """What any MMEngine entry point does: ``Runner.from_cfg(cfg).train()``."""
    cfg.merge_from_dict(options)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = str(work_dir)  # its own MessageHub (the default name is per second)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def distill_losses(runner):
    return {k: v.data[0] for k, v in runner.message_hub.log_scalars.items()
            if k.startswith('train/distill.loss_')}


def check_distilled(runner, model_class):
    assert runner.iter == 2 and isinstance(runner.model, model_class)
    losses = distill_losses(runner)
    assert losses and all(len(v) == 2 and all(map(torch.isfinite, torch.tensor(v)))
                          for v in losses.values())


@pytest.fixture(autouse=True)
def unformatted_config_dumps():
    """MMEngine formats every dumped config with yapf: seconds per run for an mmdet config."""
    with patches.unformatted_config_dumps():
        yield


# --- classification ---------------------------------------------------------------------------

@pytest.fixture(scope='module')
def cls_options(tmp_path_factory):
    """The quick-start configs on a tiny generated set, 2 iterations, a random teacher."""
    from kdzoo.registry import build
    from kdzoo.toydata import make_shapes_dataset
    root = tmp_path_factory.mktemp('cls')
    data = make_shapes_dataset(str(root / 'data'), num_classes=10, per_class=(2, 1))
    teacher = build(Config.fromfile(config_path('quickstart', 'teacher.py')).model)
    torch.save(teacher.state_dict(), root / 'teacher.pth')
    options = {'train_dataloader.dataset.root': data['train'],
               'val_dataloader.dataset.root': data['val'],
               'test_dataloader.dataset.root': data['val'], 'train_dataloader.batch_size': 4,
               'train_cfg.max_iters': 2, 'param_scheduler.0.total_steps': 2,
               'visualizer.vis_backends': [dict(type='LocalVisBackend')]}
    return options, str(root / 'teacher.pth')


def test_cls_explicit_form_distils_under_a_plain_runner(cls_options, tmp_path):
    from kdzoo.adapters.cls import DistillClassifier
    options, teacher = cls_options
    cfg = explicit_config(tmp_path, config_path('quickstart', 'msdcrd.py'),
                          'kdzoo.DistillClassifier')
    runner = train_plain(cfg, {**options, 'model.distill_cfg.teacher.checkpoint': teacher},
                         tmp_path / 'work')
    check_distilled(runner, DistillClassifier)
    assert set(distill_losses(runner)) == {'train/distill.loss_msdcrd_0'}


def explicit_file(tmp_path, base, model_type, extra=''):
    explicit_config(tmp_path, base, model_type, extra)
    return str(tmp_path / 'explicit.py')


def train_with_kdzoo(config, options, work_dir):
    """What ``tools/train.py CONFIG --cfg-options ...`` does."""
    from kdzoo.runner import build_runner
    # its own MessageHub: the default experiment name is the config's and the second
    runner = build_runner(config, cfg_options={**options, 'experiment_name': str(work_dir)},
                          work_dir=str(work_dir))
    runner.train()
    return runner


def check_wrapped_once(runner, model_class, student_class):
    """The distilling model around the config's student, not around a second distilling model,
    with the teacher check of tools/train.py."""
    assert type(runner.model) is model_class
    assert type(runner.model.student).__name__ == student_class
    assert 'TeacherCheckHook' in [type(hook).__name__ for hook in runner.hooks]
    check_distilled(runner, model_class)


def test_cls_explicit_form_trains_with_tools_train(cls_options, tmp_path):
    """tools/train.py used to wrap the explicit form a second time (the distilling model as the
    student, the top-level distill_cfg's teacher), failing on the wrong teacher checkpoint."""
    from kdzoo.adapters.cls import DistillClassifier
    options, teacher = cls_options
    config = explicit_file(tmp_path, config_path('quickstart', 'msdcrd.py'),
                           'kdzoo.DistillClassifier')
    runner = train_with_kdzoo(config, {**options, 'model.distill_cfg.teacher.checkpoint': teacher},
                              tmp_path / 'work')
    check_wrapped_once(runner, DistillClassifier, 'TimmClassifier')


def test_explicit_form_overrides_of_the_top_level_distill_cfg_are_refused(cls_options, tmp_path):
    from kdzoo.runner import build_runner
    options, teacher = cls_options
    config = explicit_file(tmp_path, config_path('quickstart', 'msdcrd.py'),
                           'kdzoo.DistillClassifier')
    message = ("--cfg-options ['distill_cfg.teacher.checkpoint']: this config is in the explicit "
               "form (its model is 'kdzoo.DistillClassifier', built with model.distill_cfg), so "
               'the top-level distill_cfg is not read; give them as '
               "['model.distill_cfg.teacher.checkpoint'] (docs/entry_points.md)")
    with pytest.raises(ValueError, match='^' + re.escape(message) + '$'):
        build_runner(config, cfg_options={**options, 'distill_cfg.teacher.checkpoint': teacher},
                     work_dir=str(tmp_path / 'work'))


def test_explicit_form_student_alone(cls_options, tmp_path):
    """compare's student-alone arm on an explicit-form config: the student, not a distilling
    model without its distill_cfg."""
    from kdzoo.runner import build_runner
    options, _ = cls_options
    config = explicit_file(tmp_path, config_path('quickstart', 'msdcrd.py'),
                           'kdzoo.DistillClassifier')
    runner = build_runner(config, cfg_options=options, work_dir=str(tmp_path / 'work'),
                          student_only=True)
    assert type(runner.model).__name__ == 'TimmClassifier'


def test_cls_distill_cfg_under_a_plain_runner_stops_before_training(cls_options, tmp_path):
    options, _ = cls_options
    cfg = Config.fromfile(config_path('quickstart', 'msdcrd.py'))
    cfg.merge_from_dict(options)
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    with pytest.raises(DistillCfgIgnoredError) as err:
        runner.train()
    assert runner.iter == 0
    text = str(err.value)
    assert 'the model MMEngine built is TimmClassifier' in text
    assert '`kdzoo train CONFIG`' in text
    assert "type='kdzoo.DistillClassifier'" in text and "imports=['kdzoo.adapters.cls']" in text


def test_a_plain_run_of_the_student_alone_is_not_refused(cls_options, tmp_path):
    """Without distill_cfg the guard does nothing (tools/compare.py's student-alone arm)."""
    options, _ = cls_options
    cfg = Config.fromfile(config_path('quickstart', 'student.py'))
    runner = train_plain(cfg, options, tmp_path)
    assert runner.iter == 2


# --- mmseg --------------------------------------------------------------------------------------

def test_mmseg_explicit_form_distils_under_a_plain_runner(tmp_path):
    pytest.importorskip('mmseg', reason='segmentation needs the full install')
    from kdzoo.adapters.mmseg import DistillSegmentor
    from kdzoo.adapters.mmseg.distill import build_mmseg
    from kdzoo.teacher import model_config
    from kdzoo.toydata import make_seg_dataset
    root = make_seg_dataset(str(tmp_path / 'data'), num_images=(4, 1))
    teacher = build_mmseg(model_config(config_path('seg', 'quickstart_teacher.py')))
    torch.save(teacher.state_dict(), tmp_path / 'teacher.pth')
    options = {'train_cfg.max_iters': 2, 'train_dataloader.batch_size': 2,
               'model.distill_cfg.teacher.checkpoint': str(tmp_path / 'teacher.pth')}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options.update({f'{loader}.dataset.data_root': root, f'{loader}.num_workers': 0,
                        f'{loader}.persistent_workers': False})
    cfg = explicit_config(tmp_path, config_path('seg', 'quickstart_msdcrd.py'),
                          'kdzoo.DistillSegmentor')
    check_distilled(train_plain(cfg, options, tmp_path / 'work'), DistillSegmentor)


# --- mmdet --------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def det_data(tmp_path_factory):
    pytest.importorskip('mmdet', reason='detection needs the full install')
    from kdzoo.toydata import make_det_dataset
    return make_det_dataset(str(tmp_path_factory.mktemp('det')), num_images=(4, 1), size=128)


def det_options(data):
    return {'train_dataloader.dataset.data_root': data['root'] + '/',
            'val_dataloader.dataset.data_root': data['root'] + '/',
            'val_evaluator.ann_file': data['val_ann'], 'train_dataloader.batch_size': 2,
            'train_cfg.max_iters': 2}


def test_mmdet_explicit_form_distils_under_a_plain_runner(det_data, tmp_path):
    from kdzoo.adapters.mmdet import DistillDetector
    from kdzoo.adapters.mmdet.distill import build_mmdet
    from kdzoo.teacher import model_config
    teacher = build_mmdet(model_config(config_path('det', 'quickstart_retinanet_swin_teacher.py')))
    teacher.init_weights()
    torch.save(teacher.state_dict(), tmp_path / 'teacher.pth')
    cfg = explicit_config(tmp_path, config_path('det', 'quickstart_pkd.py'),
                          'kdzoo.DistillDetector',
                          "custom_imports = dict(imports=['kdzoo.adapters.mmdet'], "
                          'allow_failed_imports=False)\n')
    options = {**det_options(det_data),
               'model.distill_cfg.teacher.checkpoint': str(tmp_path / 'teacher.pth')}
    runner = train_plain(cfg, options, tmp_path / 'work')
    check_distilled(runner, DistillDetector)
    assert set(distill_losses(runner)) == {'train/distill.loss_pkd_fpn',
                                           'train/distill.loss_cwd_cls'}


def test_mmdet_explicit_form_trains_with_tools_train(det_data, tmp_path):
    """For det the double wrapping failed with advice that led to a second error."""
    from kdzoo.adapters.mmdet import DistillDetector
    from kdzoo.adapters.mmdet.distill import build_mmdet
    from kdzoo.teacher import model_config
    teacher = build_mmdet(model_config(config_path('det', 'quickstart_retinanet_swin_teacher.py')))
    teacher.init_weights()
    torch.save(teacher.state_dict(), tmp_path / 'teacher.pth')
    config = explicit_file(tmp_path, config_path('det', 'quickstart_pkd.py'),
                           'kdzoo.DistillDetector',
                           "custom_imports = dict(imports=['kdzoo.adapters.mmdet'], "
                           'allow_failed_imports=False)\n')
    options = {**det_options(det_data),
               'model.distill_cfg.teacher.checkpoint': str(tmp_path / 'teacher.pth'),
               'model.distill_cfg.teacher_check': False}
    runner = train_with_kdzoo(config, options, tmp_path / 'work')
    assert type(runner.model) is DistillDetector
    assert type(runner.model.student).__name__ == 'RetinaNet'
    check_distilled(runner, DistillDetector)


def test_mmdet_config_importing_nothing_of_kdzoo_stops_before_training(det_data, tmp_path):
    """A detection config with distill_cfg and no custom_imports, trained as mmdet's own
    tools/train.py does, in a fresh interpreter: the start-up hook's guard stops it."""
    code = textwrap.dedent(f'''
        import sys
        from mmengine.config import Config
        from mmengine.runner import Runner
        cfg = Config.fromfile({config_path('det', 'quickstart_pkd.py')!r})
        cfg.merge_from_dict({det_options(det_data)!r})
        cfg.work_dir = {str(tmp_path)!r}
        runner = Runner.from_cfg(cfg)
        assert not [m for m in sys.modules if m.startswith('kdzoo.adapters')]
        runner.train()
        ''')
    out = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path), capture_output=True,
                         text=True)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()
    error = next(line for line in last if line.startswith('kdzoo.guard.DistillCfgIgnoredError'))
    assert 'the model MMEngine built is RetinaNet' in error, out.stderr[-3000:]
    assert "type='kdzoo.DistillDetector'" in out.stderr and '`kdzoo train CONFIG`' in out.stderr
    assert 'data_preprocessor={{_base_.model.data_preprocessor}}' in out.stderr
    assert 'Iter(train)' not in out.stdout + out.stderr
