"""Class names on the segmentation path: an mmseg training checkpoint records the generated set's
classes (mmseg's dataset metainfo through kdzoo's seeded data stream), and the class-names check
before training applies to it as to classification (tests/tools/test_training_class_names.py)."""
import os
import re

import pytest
import torch

from kdzoo.checkpoint import load_file
from kdzoo.class_names import ClassNamesError, recorded_classes
from kdzoo.toydata import make_seg_dataset
from kdzoo.toydata.seg import CLASSES

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STUDENT = os.path.join(REPO, 'configs', 'seg', 'quickstart_student.py')


@pytest.fixture(autouse=True)
def unformatted_config_dumps(monkeypatch):
    """MMEngine formats every dumped config with yapf (seconds per mmseg config); no test reads
    it."""
    import yapf.yapflib.yapf_api
    monkeypatch.setattr(yapf.yapflib.yapf_api, 'FormatCode', lambda text, **kwargs: (text, None))


def options(root, **extra):
    """The seg quick-start student on the generated set at ``root``: 2 iterations, batch 2."""
    result = {'train_cfg.max_iters': 2, 'train_cfg.val_interval': 100,
              'default_hooks.checkpoint.interval': 2, 'default_hooks.logger.interval': 1,
              'train_dataloader.batch_size': 2}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        result.update({f'{loader}.dataset.data_root': root, f'{loader}.num_workers': 0,
                       f'{loader}.persistent_workers': False})
    return dict(result, **extra)


def test_a_seg_checkpoint_records_its_classes_and_another_order_stops_load_from(tmp_path):
    from kdzoo.runner import build_runner
    root = str(tmp_path / 'data')
    make_seg_dataset(root, num_images=(2, 1))
    build_runner(STUDENT, cfg_options=options(root), work_dir=str(tmp_path / 'work')).train()
    saved = load_file(tmp_path / 'work' / 'iter_2.pth')
    assert recorded_classes(saved) == CLASSES
    reordered = (CLASSES[1], CLASSES[0]) + CLASSES[2:]
    saved['meta']['dataset_meta']['classes'] = reordered
    start = str(tmp_path / 'start.pth')
    torch.save(saved, start)
    runner = build_runner(STUDENT, cfg_options=options(root, load_from=start),
                          work_dir=str(tmp_path / 'again'))
    with pytest.raises(ClassNamesError, match='^' + re.escape(
            f'load_from checkpoint {start} was trained on other classes than the data: the same '
            f'10 classes in another order (2 at other labels).\n  checkpoint: {list(reordered)}\n'
            f'  data:       {list(CLASSES)}\n') + '.*check_classes=False\\)\\.$'):
        runner.train()
