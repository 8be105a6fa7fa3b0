"""tools/make_toy_data.py writes each task's set in its real format."""
import json
import os

from tools.make_toy_data import main


def test_writes_each_format(tmp_path):
    main(['cls', str(tmp_path / 'cls'), '--train', '2', '--val', '1'])
    classes = os.listdir(tmp_path / 'cls' / 'train')
    assert len(classes) == 10 and len(os.listdir(tmp_path / 'cls' / 'val' / classes[0])) == 1
    main(['seg', str(tmp_path / 'seg'), '--train', '3', '--val', '2'])
    images = sorted(os.listdir(tmp_path / 'seg' / 'img_dir' / 'train'))
    assert len(images) == 3 and sorted(os.listdir(tmp_path / 'seg' / 'ann_dir' / 'train')) == images
    main(['det', str(tmp_path / 'det'), '--train', '4', '--val', '2'])
    coco = json.loads((tmp_path / 'det' / 'annotations' / 'instances_train.json').read_text())
    assert len(coco['images']) == 4 and {'annotations', 'categories'} <= set(coco)
