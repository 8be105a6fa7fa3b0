"""Shared pieces of the tools tests: tiny timm models, the generated shapes set, small configs.

Importable as ``tools_helpers`` (pytest puts this folder on sys.path). It also puts the repository
root on sys.path, so ``tools.train`` imports however pytest is started.
"""
import glob
import os
import pprint
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

NUM_CLASSES = 4
# A ResNet student (plain timm architecture: its export loads into timm.create_model as it is)
# and a ConvNeXt teacher (another family), both resized to 64 px inside the model.
STUDENT = dict(type='TimmClassifier', model_name='test_resnet', num_classes=NUM_CLASSES,
               img_size=64)
TEACHER = dict(type='TimmClassifier', model_name='test_convnext', num_classes=NUM_CLASSES,
               img_size=64)
# stage1..4 widths of the two models (timm feature_info; maps 16/8/4/2 at 64 px).
STUDENT_WIDTHS = (32, 48, 192, 96)
TEACHER_WIDTHS = (24, 32, 48, 64)

SEED_LOSSES = {
    'msdcrd': dict(
        losses=[dict(student='dense_logits', teacher='dense_logits',
                     loss=dict(type='MSDCRDLoss'), name='msdcrd')]),
    'lfcc': dict(
        losses=[dict(student=f'stage{i}', teacher=f'stage{i}', loss=dict(type='LFCCLoss'),
                     connector=f'proj{i}', name=f'lfcc_stage{i}') for i in (3, 4)],
        connectors={f'proj{i}': dict(type='Projector', in_channels=STUDENT_WIDTHS[i - 1],
                                     out_channels=TEACHER_WIDTHS[i - 1]) for i in (3, 4)}),
    'mldrkd': dict(
        losses=[dict(student='stage2', teacher='logits', loss=dict(type='DFRALoss'),
                     connector='msdf.branches.0', name='dfra_stage2'),
                dict(student=['stage2', 'stage4'], teacher='logits', loss=dict(type='DFRALoss'),
                     connector='msdf', name='dfra_fused')],
        connectors=dict(msdf=dict(type='MSDFusion', num_classes=NUM_CLASSES, branches=[
            dict(in_channels=STUDENT_WIDTHS[1], stride=4, embed_dim=96),
            dict(in_channels=STUDENT_WIDTHS[3], stride=1, embed_dim=96)]))),
    'kd': dict(losses=[dict(student='logits', teacher='logits', loss=dict(type='KDLoss'),
                            name='kd')]),
}


def cls_config_files(dataset=None):
    """Every config of configs/cls/ (teachers included), without the ``_base_`` files; only those
    of ``dataset`` when it is given: the data set the file name ends with, ``<name>_<data
    set>.py`` (``'cifar100'``, ``'imagenet'``, ``'tiny-imagenet'``)."""
    root = os.path.join(REPO, 'configs', 'cls')
    files = glob.glob(os.path.join(root, '*.py')) + glob.glob(os.path.join(root, '*', '*.py'))
    return sorted(f for f in files if os.sep + '_base_' + os.sep not in f
                  and (dataset is None or os.path.basename(f).endswith(f'_{dataset}.py')))


def runner_config(data, work_dir, model=STUDENT, distill_cfg=None, max_iters=2,
                  checkpoint_interval=2):
    """A complete classification config (nothing inherited) for the shapes set at ``data``."""
    def loader(split, shuffle):
        return dict(batch_size=4, num_workers=0,
                    dataset=dict(type='ImageFolderCls', root=data[split]),
                    sampler=dict(type='DefaultSampler', shuffle=shuffle),
                    collate_fn=dict(type='default_collate'))
    cfg = dict(
        default_scope='kdzoo',
        custom_imports=dict(imports=['kdzoo.adapters.cls'], allow_failed_imports=False),
        work_dir=str(work_dir),
        model=model,
        train_dataloader=loader('train', True),
        val_dataloader=loader('val', False),
        test_dataloader=loader('val', False),
        val_evaluator=dict(type='Accuracy'),
        test_evaluator=dict(type='Accuracy'),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000),
        val_cfg=dict(type='ValLoop'),
        test_cfg=dict(type='TestLoop'),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=checkpoint_interval)),
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo')),
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=0),
        visualizer=dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')]),
        log_level='INFO',
    )
    if distill_cfg is not None:
        cfg['distill_cfg'] = distill_cfg
    return cfg


def write_config(path, cfg):
    """Write ``cfg`` as a Python config file; returns the path as a string."""
    with open(path, 'w') as f:
        for key, value in cfg.items():
            f.write(f'{key} = {pprint.pformat(value, width=100, sort_dicts=False)}\n')
    return str(path)


def log_text(work_dir):
    """The text of every MMEngine log file under ``work_dir`` (one per run, in time order)."""
    paths = sorted(glob.glob(os.path.join(str(work_dir), '*', '*.log')))
    return [open(p).read() for p in paths]


def scalars_text(work_dir):
    """The contents of the runs' ``vis_data/scalars.json`` files (LocalVisBackend), joined."""
    paths = sorted(glob.glob(os.path.join(str(work_dir), '*', 'vis_data', 'scalars.json')))
    return ''.join(open(p).read() for p in paths)
