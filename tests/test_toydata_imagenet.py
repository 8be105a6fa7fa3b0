"""kdzoo.toydata.imagenet: the ImageNet and Tiny-ImageNet folder layouts, deterministic, and
read back with the labels they were drawn for."""
import filecmp
import os

import pytest

from kdzoo.toydata import make_imagenet_dataset, make_tiny_imagenet_dataset
from kdzoo.toydata.cls import shape_classes


def files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, names in os.walk(root) for f in names)


def test_imagenet_layout_is_ofa_kds_image_folder(tmp_path):
    folders = make_imagenet_dataset(str(tmp_path), num_classes=2, per_class=(2, 1), size=16)
    assert folders == {'train': str(tmp_path / 'train'), 'val': str(tmp_path / 'val')}
    assert files(tmp_path) == [
        'train/n00000000/n00000000_0.JPEG', 'train/n00000000/n00000000_1.JPEG',
        'train/n00000001/n00000001_0.JPEG', 'train/n00000001/n00000001_1.JPEG',
        'val/n00000000/ILSVRC2012_val_00000001.JPEG', 'val/n00000001/ILSVRC2012_val_00000002.JPEG']


def test_tiny_imagenet_layout_is_the_releases(tmp_path):
    root = make_tiny_imagenet_dataset(str(tmp_path), num_classes=2, per_class=(1, 2), size=16)
    assert root == str(tmp_path)
    assert files(tmp_path) == [
        'train/n00000000/images/n00000000_0.JPEG', 'train/n00000000/n00000000_boxes.txt',
        'train/n00000001/images/n00000001_0.JPEG', 'train/n00000001/n00000001_boxes.txt',
        'val/images/val_0.JPEG', 'val/images/val_1.JPEG', 'val/images/val_2.JPEG',
        'val/images/val_3.JPEG', 'val/val_annotations.txt', 'wnids.txt', 'words.txt']
    assert (tmp_path / 'wnids.txt').read_text() == 'n00000000\nn00000001\n'
    names = shape_classes(2)
    assert (tmp_path / 'words.txt').read_text() == f'n00000000\t{names[0]}\nn00000001\t{names[1]}\n'
    assert (tmp_path / 'val' / 'val_annotations.txt').read_text().splitlines() == [
        f'val_{i}.JPEG\tn0000000{i // 2}\t0\t0\t15\t15' for i in range(4)]
    assert (tmp_path / 'train' / 'n00000001' / 'n00000001_boxes.txt').read_text() == \
        'n00000001_0.JPEG\t0\t0\t15\t15\n'


@pytest.mark.parametrize('make', [make_imagenet_dataset, make_tiny_imagenet_dataset])
def test_same_arguments_same_files(make, tmp_path):
    make(str(tmp_path / 'a'), num_classes=2, per_class=1, size=16, seed=3)
    make(str(tmp_path / 'b'), num_classes=2, per_class=1, size=16, seed=3)
    make(str(tmp_path / 'c'), num_classes=2, per_class=1, size=16, seed=4)
    names = files(tmp_path / 'a')
    assert names == files(tmp_path / 'b') == files(tmp_path / 'c')
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / 'a', tmp_path / 'b', names, shallow=False)
    assert len(match) == len(names) and not mismatch and not errors
    _, mismatch, _ = filecmp.cmpfiles(tmp_path / 'a', tmp_path / 'c', names, shallow=False)
    assert any(name.endswith('.JPEG') for name in mismatch)


@pytest.mark.parametrize('make', [make_imagenet_dataset, make_tiny_imagenet_dataset])
def test_bad_counts_are_refused(make, tmp_path):
    with pytest.raises(ValueError, match='per_class must be one positive count or one per split'):
        make(str(tmp_path), num_classes=2, per_class=(1, 2, 3))
    with pytest.raises(ValueError, match='per_class'):
        make(str(tmp_path), num_classes=2, per_class=0)
