"""One generated set per task, written for an experiment, with the cfg-options that point a
config's loaders (and evaluators) at it.

``make_cls_data`` / ``make_seg_data`` / ``make_det_data`` take ``(root, size)`` (``size``: the
keyword arguments of the set, as the plug-and-play profiles give them, see docs/results.md) and
return the cfg-options. Deterministic: the same ``size`` gives the same files.
"""
import multiprocessing
import os
import os.path as osp
import shutil

from .cls import make_shapes_dataset
from .det import make_det_dataset
from .seg import make_seg_dataset

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def shapes_shard(job):
    """Write one shard of the shapes set: ``job = (root, num_classes, per_class, size, seed)``."""
    root, num_classes, per_class, size, seed = job
    make_shapes_dataset(root, num_classes=num_classes, per_class=per_class, size=size, seed=seed)


def make_cls_data(root, size):
    """The shapes set (``make_shapes_dataset``), drawn in parallel: shard ``s`` is the set of seed
    ``s`` with ``per_class / shards`` images per class; its files are then moved into
    ``root/<split>/<class>/<s>_<index>.png``. Deterministic for fixed sizes."""
    shards = max(1, min(16, os.cpu_count() or 1, size['per_class'][1]))
    counts = [tuple(n // shards + (s < n % shards) for n in size['per_class'])
              for s in range(shards)]
    parts = osp.join(root, 'shards')
    jobs = [(osp.join(parts, str(s)), size['num_classes'], counts[s], size['px'], s)
            for s in range(shards)]
    if shards == 1:
        shapes_shard(jobs[0])
    else:
        with multiprocessing.get_context('fork').Pool(shards) as pool:
            pool.map(shapes_shard, jobs)
    for s in range(shards):
        for split in ('train', 'val'):
            for name in sorted(os.listdir(osp.join(parts, str(s), split))):
                folder = osp.join(root, split, name)
                os.makedirs(folder, exist_ok=True)
                for f in os.listdir(osp.join(parts, str(s), split, name)):
                    os.replace(osp.join(parts, str(s), split, name, f),
                               osp.join(folder, f'{s}_{f}'))
    shutil.rmtree(parts)
    return {f'{loader}.dataset.root': osp.join(root, split) for loader, split in
            zip(LOADERS, ('train', 'val', 'val'))}


def make_seg_data(root, size):
    """The segmentation set (``make_seg_dataset``) of ``size['images']`` (train, val) images."""
    make_seg_dataset(root, num_images=size['images'], size=size['px'])
    return {f'{loader}.dataset.data_root': root for loader in LOADERS}


def make_det_data(root, size):
    """The COCO-format detection set (``make_det_dataset``); the evaluators read its val
    annotations."""
    data = make_det_dataset(root, num_images=size['images'], size=size['px'])
    options = {f'{loader}.dataset.data_root': data['root'] + '/' for loader in LOADERS}
    options.update({f'{key}.ann_file': data['val_ann']
                    for key in ('val_evaluator', 'test_evaluator')})
    return options
