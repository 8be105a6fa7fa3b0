"""tools/train.py on mmdet configs: every config of configs/det/ (COCO ones pointed at the generated
set, models shrunk) trains 2 iterations (losses finite, student changes, teacher frozen and out
of the checkpoint); --dry-run; and the README example: distill_cfg added to the stock mmdet
RetinaNet-R18 config trains, and its exported student loads with init_detector, same boxes."""
import glob
import math
import os

import pytest
import torch
from mmengine.config import Config
from test_mmdet_distill import shrink_options

import kdzoo.adapters.mmdet  # noqa: F401
from kdzoo.checkpoint import load_file, state_dict_of
from kdzoo.teacher import model_config, teacher_configs
from kdzoo.teacher_names import teacher_key
from kdzoo.toydata import make_det_dataset

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(glob.glob(os.path.join(REPO, 'configs', 'det', '*.py')))


@pytest.fixture(autouse=True)
def unformatted_config_dumps(monkeypatch):
    """MMEngine formats every logged / dumped config with yapf: seconds per run for an mmdet config,
    most of these tests' time. The unformatted text is the same valid config."""
    import yapf.yapflib.yapf_api
    monkeypatch.setattr(yapf.yapflib.yapf_api, 'FormatCode', lambda text, **kwargs: (text, None))


@pytest.fixture(scope='module')
def det_data(tmp_path_factory):
    return make_det_dataset(tmp_path_factory.mktemp('det'), num_images=(4, 2), size=128)


def data_options(data):
    """cfg_options putting any mmdet config on the generated set, 2 iterations, no schedule."""
    quickstart = Config.fromfile(os.path.join(REPO, 'configs', 'det', '_base_', 'quickstart.py'))
    options = {}
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = quickstart[key].to_dict()
        loader.update(_delete_=True, batch_size=2)
        loader['dataset']['data_root'] = data['root'] + '/'
        options[key] = loader
    for key in ('val_evaluator', 'test_evaluator'):
        options[key] = dict(_delete_=True, type='CocoMetric', ann_file=data['val_ann'],
                            metric='bbox')
    options.update({
        'train_cfg': dict(_delete_=True, type='IterBasedTrainLoop', max_iters=2, val_interval=100),
        'param_scheduler': [],
        'default_hooks.checkpoint': dict(_delete_=True, type='CheckpointHook', by_epoch=False,
                                         interval=2),
        'default_hooks.logger.interval': 1,
        'log_processor.by_epoch': False,
        'env_cfg.dist_cfg.backend': 'gloo',
    })
    return options


def random_teacher(config, path):
    """Save the state dict of a randomly initialised model of ``config`` at ``path``."""
    from kdzoo.adapters.mmdet.distill import build_mmdet
    teacher = build_mmdet(model_config(config))
    teacher.init_weights()
    torch.save(teacher.state_dict(), path)
    return str(path)


def options_for(config, data, tmp_path):
    """Data options, and for the COCO configs tiny random models (no download); the quick-start
    teachers (each teacher of ``distill_cfg.teacher`` / ``teachers``) from random checkpoints."""
    cfg = Config.fromfile(config)
    options = data_options(data)
    teachers = teacher_configs(cfg.distill_cfg) if 'distill_cfg' in cfg else {}
    multi = 'teachers' in cfg.get('distill_cfg', {})
    if os.path.basename(config).startswith('quickstart'):
        for name, teacher in teachers.items():
            options[f'{teacher_key(name, multi)}.checkpoint'] = random_teacher(
                teacher.config, tmp_path / f'{name}.pth')
        return options
    options.update({f'model.{k}': v for k, v in shrink_options(cfg.model).items()})
    for name, teacher in teachers.items():
        key = teacher_key(name, multi)
        options[f'{key}.cfg_options'] = shrink_options(model_config(teacher.config))
        options[f'{key}.checkpoint'] = None
    options['distill_cfg.teacher_check'] = False  # covered by the quick-start and README runs
    options['distill_cfg.check_teacher_labels'] = False  # COCO teacher configs, the toy set
    return options


def clone(state_dict):
    return {k: v.detach().clone() for k, v in state_dict.items()}


def distill_keys(runner):
    return [k for k in runner.message_hub.log_scalars if k.startswith('train/distill.loss_')]


@pytest.mark.filterwarnings('ignore:distill_cfg.teacher has no checkpoint')
@pytest.mark.parametrize('config', CONFIGS, ids=os.path.basename)
def test_each_config_trains_two_iterations(config, det_data, tmp_path):
    from kdzoo.runner import build_runner
    runner = build_runner(config, cfg_options=options_for(config, det_data, tmp_path),
                          work_dir=str(tmp_path / 'work'))
    model = runner.model
    before = clone(model.state_dict())
    distilled = 'distill_cfg' in Config.fromfile(config)
    teachers_before = {name: clone(teacher.state_dict())
                       for name, teacher in model.teachers.items()} if distilled else None
    runner.train()
    assert runner.iter == 2
    history = runner.message_hub.log_scalars
    assert all(math.isfinite(v) for v in history['train/loss'].data[0])
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    if not distilled:
        return
    keys = distill_keys(runner)
    expected = {f'train/distill.loss_{item.name}'
                for item in Config.fromfile(config).distill_cfg.losses}
    assert set(keys) == expected
    for key in keys:
        values = history[key].data[0]
        assert len(values) == 2 and all(math.isfinite(v) for v in values), key
    for name, teacher in model.teachers.items():
        assert all(torch.equal(v, teachers_before[name][k])
                   for k, v in teacher.state_dict().items()), name
        assert not teacher.training
        assert all(not p.requires_grad for p in teacher.parameters())
    saved = state_dict_of(load_file(tmp_path / 'work' / 'iter_2.pth'))
    assert saved and all(k.startswith('distiller.student.') for k in saved)


def test_dry_run_prints_every_item(det_data, tmp_path, capsys):
    from tools.train import main
    config = os.path.join(REPO, 'configs', 'det', 'quickstart_pkd.py')
    options = options_for(config, det_data, tmp_path)
    options['distill_cfg.teacher_check'] = False
    argv = [config, '--dry-run', '--work-dir', str(tmp_path / 'work'), '--cfg-options']
    argv += [f'{k}={v!r}' if isinstance(v, str) else f'{k}={v}'
             for k, v in options.items() if k.startswith('distill_cfg')]
    argv += [f'train_dataloader.dataset.data_root={det_data["root"]}/',
             f'val_dataloader.dataset.data_root={det_data["root"]}/',
             f'val_evaluator.ann_file={det_data["val_ann"]}']
    runner = main(argv)
    out = capsys.readouterr().out
    assert runner.iter == 0
    assert "pkd_fpn: student ['neck'] [[(4, 64, 16, 16)" in out
    assert "cwd_cls: student ['cls_scores'] [[(4, 90, 16, 16)" in out
    assert 'distill.loss_pkd_fpn = ' in out and 'loss_cls = ' in out


README_CONFIG = '''\
_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'   # a stock mmdet config

# --- the generated set (kdzoo.toydata.make_det_dataset) instead of COCO ---
data_root = '{root}/'
metainfo = dict(classes={classes!r})
model = dict(backbone=dict(init_cfg=None), bbox_head=dict(num_classes=10))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(
    data_root=data_root, metainfo=metainfo, ann_file='annotations/instances_train.json',
    data_prefix=dict(img='images/train/'), filter_cfg=dict(filter_empty_gt=False)))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(
    data_root=data_root, metainfo=metainfo, ann_file='annotations/instances_val.json',
    data_prefix=dict(img='images/val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1)

# --- the one addition: distill_cfg ---
distill_cfg = dict(
    teacher=dict(config='mmdet::swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py',
                 checkpoint='{teacher}', cfg_options={teacher_options!r}),
    losses=[
        dict(student='neck', teacher='neck', loss=dict(type='PKDLoss'), weight=6.0),
        dict(student='cls_scores', teacher='cls_scores', loss=dict(type='CWDLoss'), weight=5.0),
    ],
    check_teacher_labels=False,  # the teacher's config declares COCO's 80 classes
)
'''


def test_distill_cfg_on_a_stock_config_trains_and_exports(det_data, tmp_path):
    """The README example; 4 training images of batch 2 make one epoch of 2 iterations."""
    from mmdet.apis import inference_detector, init_detector

    from kdzoo.commands.export import export
    from tools.train import main
    swin = 'mmdet::swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py'
    teacher_options = {k: v for k, v in shrink_options(model_config(swin)).items()
                       if k.startswith(('backbone', 'neck.in_channels'))}
    teacher_options.update({'bbox_head.num_classes': 10, 'bbox_head.stacked_convs': 1})
    teacher = random_teacher(model_config(swin, teacher_options), tmp_path / 'teacher.pth')
    config = tmp_path / 'retinanet_r18_distilled.py'
    config.write_text(README_CONFIG.format(root=det_data['root'], classes=det_data['classes'],
                                           teacher=teacher, teacher_options=teacher_options)
                      # a smaller head, in the file: export and init_detector build it too
                      + 'model = dict(backbone=dict(init_cfg=None), '
                        'bbox_head=dict(num_classes=10, stacked_convs=1))\n')
    small = '(128, 128)'  # the stock pipelines resize to (1333, 800): keep the 128 px images
    runner = main([str(config), '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                   f'train_dataloader.dataset.pipeline.2.scale={small}',
                   f'val_dataloader.dataset.pipeline.1.scale={small}', 'train_cfg.val_interval=9'])
    assert runner.iter == 2 and len(distill_keys(runner)) == 2
    # the random teacher finds nothing: the check logs no metric and training goes on
    log = open(glob.glob(str(tmp_path / 'work' / '*' / '*.log'))[0]).read()
    assert log.index('teacher check (teacher on the val set): no metric (the evaluator returned '
                     'none') < log.index('Epoch(train) [1][2/2]')

    out = tmp_path / 'student.pth'
    export(str(config), str(tmp_path / 'work' / 'epoch_1.pth'), str(out))
    plain = init_detector(str(config), str(out), device='cpu')
    student = runner.model.student.eval()
    student.cfg = plain.cfg
    image = os.path.join(det_data['val_img'], '000000.png')
    with torch.no_grad():
        want = inference_detector(student, image).pred_instances
        got = inference_detector(plain, image).pred_instances
    assert len(got) == len(want)
    assert torch.equal(got.bboxes, want.bboxes) and torch.equal(got.scores, want.scores)
    assert torch.equal(got.labels, want.labels)
