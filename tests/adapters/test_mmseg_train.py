"""tools/train.py on the seg configs (configs/seg/) and the generated set: every seed loss trains
2 iterations from its own config (tiny models via cfg-options), the README command runs with the
real-size Swin-T UPerNet teacher and PSPNet-R18 student, and the exported student loads with
``mmseg.apis.init_model`` and predicts the same."""
import glob
import os
import sys

import pytest
import torch
from mmengine.config import Config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)
CONFIGS = os.path.join(REPO, 'configs', 'seg')
TEACHER_CONFIG = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'

# Narrow versions of the configs' models (PSPNet-R18-d8 stages 8/16/32/64 wide; Swin 16/32/64/128).
TINY_STUDENT = {
    'model.pretrained': None, 'model.backbone.stem_channels': 16,
    'model.backbone.base_channels': 8, 'model.decode_head.in_channels': 64,
    'model.decode_head.channels': 16, 'model.decode_head.num_classes': 10,
    'model.auxiliary_head.in_channels': 32, 'model.auxiliary_head.channels': 8,
    'model.auxiliary_head.num_classes': 10}
TINY_TEACHER = {
    'backbone.embed_dims': 16, 'backbone.depths': [1, 1, 1, 1], 'backbone.num_heads': [1, 1, 2, 2],
    'backbone.window_size': 4, 'decode_head.in_channels': [16, 32, 64, 128],
    'decode_head.channels': 16, 'decode_head.num_classes': 10,
    'auxiliary_head.in_channels': 64, 'auxiliary_head.channels': 8,
    'auxiliary_head.num_classes': 10}
LFCC_CONNECTORS = {f'distill_cfg.connectors.proj{i}.{key}': width
                   for i, (s, t) in zip((2, 3, 4), ((16, 32), (32, 64), (64, 128)))
                   for key, width in (('in_channels', s), ('out_channels', t))}
SEED_CONFIGS = {
    'msdcrd_swin_to_r18.py': ('msdcrd_0',),
    'lfcc_swin_to_r18.py': ('lfcc_stage2', 'lfcc_stage3', 'lfcc_stage4'),
    'mldrkd_swin_to_r18.py': ('dfra_0',),
    'cwd_swin_to_r18.py': ('cwd_0',),
    'kd_swin_to_r18.py': ('kd_0',),
}


def data_options(root, size):
    """cfg-options pointing an ADE20K config at the generated set, with ``size`` px crops."""
    options = {'model.data_preprocessor.size': (size, size), 'train_cfg.max_iters': 2,
               'train_dataloader.batch_size': 2,
               'train_dataloader.dataset.pipeline.1.reduce_zero_label': False,
               'train_dataloader.dataset.pipeline.2.scale': (size, size),
               'train_dataloader.dataset.pipeline.3.crop_size': (size, size),
               'val_dataloader.dataset.pipeline.1.scale': (size, size),
               'val_dataloader.dataset.pipeline.2.reduce_zero_label': False}
    for loader, split in (('train_dataloader', 'train'), ('val_dataloader', 'val')):
        options.update({
            f'{loader}.num_workers': 0, f'{loader}.persistent_workers': False,
            f'{loader}.dataset.type': 'ShapesSegDataset', f'{loader}.dataset.data_root': root,
            f'{loader}.dataset.data_prefix.img_path': f'img_dir/{split}',
            f'{loader}.dataset.data_prefix.seg_map_path': f'ann_dir/{split}'})
    return options


def options_text(options):
    """The options as ``--cfg-options`` words."""
    def text(value):
        return f'({value[0]},{value[1]})' if isinstance(value, tuple) else str(value)
    return [f'{key}={text(value)}' for key, value in options.items()]


def build_teacher_checkpoint(path, cfg_options=None):
    from kdzoo.adapters.mmseg.distill import build_mmseg
    from kdzoo.teacher import model_config
    torch.manual_seed(0)
    torch.save(build_mmseg(model_config(TEACHER_CONFIG, cfg_options)).state_dict(), path)
    return str(path)


@pytest.fixture(autouse=True, scope='module')
def unformatted_config_dumps():
    """MMEngine formats each config dump with yapf: ~7 s per dump of an ADE20K config on a
    2-core machine, 3 dumps per run. The runs here skip the formatting (no test reads it)."""
    from yapf.yapflib import yapf_api
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(yapf_api, 'FormatCode', lambda text, **kwargs: (text, False))
        yield


@pytest.fixture(scope='module')
def seg_data(tmp_path_factory):
    from kdzoo.toydata import make_seg_dataset
    return make_seg_dataset(str(tmp_path_factory.mktemp('seg_shapes')), num_images=(8, 2))


@pytest.fixture(scope='module')
def tiny_teacher(tmp_path_factory):
    return build_teacher_checkpoint(tmp_path_factory.mktemp('teacher') / 'tiny.pth', TINY_TEACHER)


def clone(state_dict):
    return {k: v.detach().clone() for k, v in state_dict.items()}


def losses_of(runner, names):
    """Each distill item's logged values (one per iteration)."""
    return {name: runner.message_hub.get_scalar(f'train/distill.loss_{name}').data[0]
            for name in names}


def check_trained(runner, before, teacher_before, names):
    assert runner.iter == 2
    for values in losses_of(runner, names).values():
        assert len(values) == 2 and all(torch.isfinite(torch.tensor(values)))
    model = runner.model
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any(k.startswith('distiller.student.backbone.') for k in changed)
    assert all(torch.equal(v, teacher_before[k]) for k, v in model.teacher.state_dict().items())
    assert not model.teacher.training
    assert not any(p.requires_grad for p in model.teacher.parameters())
    saved = torch.load(os.path.join(runner.work_dir, 'iter_2.pth'), weights_only=False)
    assert saved['state_dict'] and not any('teacher' in k for k in saved['state_dict'])


@pytest.mark.parametrize('config', sorted(SEED_CONFIGS))
def test_each_seed_loss_trains_two_iterations(config, seg_data, tiny_teacher, tmp_path):
    from kdzoo.runner import build_runner
    options = {**data_options(seg_data, 64), **TINY_STUDENT, **LFCC_CONNECTORS,
               'distill_cfg.teacher.checkpoint': tiny_teacher,
               'distill_cfg.teacher.cfg_options': TINY_TEACHER,
               'distill_cfg.teacher_check': False,
               # the ADE20K teacher config declares ADE20K's labels, the student the shapes set's
               'distill_cfg.check_teacher_labels': False}
    if config != 'lfcc_swin_to_r18.py':
        options = {k: v for k, v in options.items() if k not in LFCC_CONNECTORS}
    runner = build_runner(os.path.join(CONFIGS, config), cfg_options=options,
                          work_dir=str(tmp_path))
    before = clone(runner.model.state_dict())
    teacher_before = clone(runner.model.teacher.state_dict())
    runner.train()
    check_trained(runner, before, teacher_before, SEED_CONFIGS[config])


def test_readme_command_real_size_and_export_round_trip(seg_data, tmp_path, capsys):
    """The README's command (real-size models, 128 px crops), then export -> init_model."""
    from mmseg.apis import init_model

    from kdzoo.commands.export import export
    from tools.train import main
    teacher = build_teacher_checkpoint(tmp_path / 'upernet_swin_t.pth')
    config = os.path.join(CONFIGS, 'msdcrd_swin_to_r18.py')
    options = {**data_options(seg_data, 128), 'model.pretrained': None,
               'distill_cfg.teacher.checkpoint': teacher, 'default_hooks.logger.interval': 1,
               'distill_cfg.check_teacher_labels': False,  # an ADE20K teacher on the shapes set
               'distill_cfg.teacher.check_classes': False}
    runner = main([config, '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                   *options_text(options)])
    assert runner.iter == 2
    assert torch.isfinite(torch.tensor(losses_of(runner, ['msdcrd_0'])['msdcrd_0'])).all()
    log = open(glob.glob(str(tmp_path / 'work' / '*' / '*.log'))[0]).read()
    check = log.index('teacher check (teacher on the val set): aAcc:')
    assert check < log.index('Iter(train) [1/2]')
    out = tmp_path / 'student.pth'
    weights = export(config, str(tmp_path / 'work' / 'iter_2.pth'), str(out))
    assert not any(k.startswith(('distiller', 'teacher', 'connectors')) for k in weights)
    plain = init_model(config, str(out), device='cpu')
    model = runner.model.eval()
    batch = next(iter(runner.val_dataloader))
    data = model.data_preprocessor(batch, False)
    with torch.no_grad():
        expected = model.student.predict(data['inputs'], data['data_samples'])
        got = plain.predict(data['inputs'], data['data_samples'])
    assert torch.allclose(got[0].seg_logits.data, expected[0].seg_logits.data, atol=1e-5)
    assert torch.equal(got[0].pred_sem_seg.data, expected[0].pred_sem_seg.data)


@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(CONFIGS, '*.py'))),
                         ids=os.path.basename)
def test_every_seg_config_parses_with_a_resolvable_teacher(path):
    from kdzoo.adapters import check_distill_cfg
    from kdzoo.distiller import parse_items
    from kdzoo.teacher import model_config, teacher_configs
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmseg' and cfg.model.type == 'EncoderDecoder'
    if 'distill_cfg' not in cfg:
        return
    check_distill_cfg(cfg.distill_cfg)
    teachers = teacher_configs(cfg.distill_cfg)
    parse_items(cfg.distill_cfg.losses, list(teachers))
    for teacher_cfg in teachers.values():
        teacher = model_config(teacher_cfg.config)
        assert teacher.type == 'EncoderDecoder'
        assert teacher.decode_head.num_classes == cfg.model.decode_head.num_classes
        checkpoint = teacher_cfg.checkpoint
        assert checkpoint.startswith('https://download.openmmlab.com/') or 'quickstart' in path


def test_quickstart_teacher_then_distillation(seg_data, tmp_path):
    """quickstart_teacher.py trains; quickstart_msdcrd.py distils from its checkpoint."""
    from tools.train import main
    options = ['train_cfg.max_iters=2', 'train_dataloader.batch_size=4']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.dataset.data_root={seg_data}', f'{loader}.num_workers=0',
                    f'{loader}.persistent_workers=False']
    teacher = main([os.path.join(CONFIGS, 'quickstart_teacher.py'), '--work-dir',
                    str(tmp_path / 'teacher'), '--cfg-options', *options])
    checkpoint = tmp_path / 'teacher' / 'iter_2.pth'
    runner = main([os.path.join(CONFIGS, 'quickstart_msdcrd.py'), '--work-dir',
                   str(tmp_path / 'msdcrd'), '--cfg-options', *options,
                   f'distill_cfg.teacher.checkpoint={checkpoint}'])
    assert runner.iter == 2
    assert torch.isfinite(torch.tensor(losses_of(runner, ['msdcrd_0'])['msdcrd_0'])).all()
    for key, value in runner.model.teacher.state_dict().items():
        assert torch.equal(value, teacher.model.state_dict()[key])
    log = open(glob.glob(str(tmp_path / 'msdcrd' / '*' / '*.log'))[0]).read()
    assert 'teacher check (teacher on the val set): aAcc: ' in log


def test_quickstart_two_teachers_distil_from_both(seg_data, tmp_path):
    """quickstart_teacher.py (Swin) and quickstart_teacher_r50.py (ResNet-50) train;
    quickstart_two_teachers.py distils from both checkpoints: every item's loss is finite, each
    teacher holds its own checkpoint, and the teacher check evaluates each."""
    from tools.train import main
    options = ['train_cfg.max_iters=2', 'train_dataloader.batch_size=4']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.dataset.data_root={seg_data}', f'{loader}.num_workers=0',
                    f'{loader}.persistent_workers=False']
    trained = {name: main([os.path.join(CONFIGS, config), '--work-dir', str(tmp_path / name),
                           '--cfg-options', *options])
               for name, config in (('swin', 'quickstart_teacher.py'),
                                    ('cnn', 'quickstart_teacher_r50.py'))}
    runner = main([os.path.join(CONFIGS, 'quickstart_two_teachers.py'), '--work-dir',
                   str(tmp_path / 'distil'), '--cfg-options', *options,
                   *(f'distill_cfg.teachers.{name}.checkpoint={tmp_path / name / "iter_2.pth"}'
                     for name in trained)])
    assert runner.iter == 2
    for name, values in losses_of(runner, ['cwd_swin', 'cwd_cnn', 'cwd_ensemble']).items():
        assert len(values) == 2 and torch.isfinite(torch.as_tensor(values)).all(), name
    assert list(runner.model.teachers) == ['swin', 'cnn']
    for name, teacher in trained.items():
        for key, value in runner.model.teachers[name].state_dict().items():
            assert torch.equal(value, teacher.model.state_dict()[key]), (name, key)
    log = open(glob.glob(str(tmp_path / 'distil' / '*' / '*.log'))[0]).read()
    for name in trained:
        assert f"teacher check (teacher '{name}' on the val set): aAcc: " in log
