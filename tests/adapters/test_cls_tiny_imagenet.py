"""TinyImageNetCls reads Tiny-ImageNet's release layout (written by kdzoo.toydata's generator)
and names the file and the expected layout when something is missing or inconsistent."""
import os
import shutil

import pytest
import torch
from mmengine.registry import DATASETS
from PIL import Image

from kdzoo.adapters.cls import TinyImageNetCls
from kdzoo.toydata import make_tiny_imagenet_dataset


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """3 classes x (3 training, 2 validation) images of 64 px."""
    return make_tiny_imagenet_dataset(str(tmp_path_factory.mktemp('tiny')), 3, (3, 2))


@pytest.fixture
def copy(tiny, tmp_path):
    """A copy of the generated set to break."""
    return shutil.copytree(tiny, tmp_path / 'tiny')


def test_train_and_val_splits_labels_and_items(tiny):
    train = DATASETS.build(dict(type='TinyImageNetCls', root=tiny, split='train'))
    val = TinyImageNetCls(tiny, split='val')
    classes = ('n00000000', 'n00000001', 'n00000002')
    assert train.metainfo['classes'] == val.metainfo['classes'] == classes
    assert [label for _, label in train.samples] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [label for _, label in val.samples] == [0, 0, 1, 1, 2, 2]
    annotations = open(os.path.join(tiny, 'val', 'val_annotations.txt')).read().splitlines()
    for (path, label), line in zip(val.samples, annotations):
        name, wnid = line.split('\t')[:2]
        assert os.path.basename(path) == name and classes[label] == wnid
    item = val[3]
    assert item['inputs'].dtype == torch.uint8 and item['inputs'].shape == (3, 64, 64)
    assert item['data_samples'] == 1


def test_classes_are_the_sorted_wnids_and_grey_images_become_rgb(copy):
    (copy / 'wnids.txt').write_text('n00000002\nn00000000\n\nn00000001\n')
    image = copy / 'val' / 'images' / 'val_0.JPEG'
    Image.new('L', (64, 64), 77).save(image)
    val = TinyImageNetCls(str(copy), split='val')
    assert val.metainfo['classes'] == ('n00000000', 'n00000001', 'n00000002')
    grey = val[0]['inputs']
    assert grey.shape == (3, 64, 64) and (grey[0] == grey[2]).all()


def test_transform_applies(tiny):
    val = TinyImageNetCls(tiny, split='val', transform=dict(type='TimmEvalTransform', size=56))
    assert val[0]['inputs'].shape == (3, 56, 56)


@pytest.mark.parametrize('missing, match', [
    ('wnids.txt', 'the class list .*wnids.txt not found'),
    ('val/val_annotations.txt', 'the validation labels .*val_annotations.txt not found'),
])
def test_missing_list_names_the_file_and_the_layout(copy, missing, match):
    os.remove(copy / missing)
    with pytest.raises(FileNotFoundError, match=match + '.*expected the unpacked tiny-imagenet'):
        TinyImageNetCls(str(copy), split='val')


def test_missing_training_folder_names_the_class(copy):
    shutil.rmtree(copy / 'train' / 'n00000001')
    with pytest.raises(FileNotFoundError, match='no training folder .*n00000001/images'):
        TinyImageNetCls(str(copy), split='train')


def test_bad_annotation_lines_name_the_line(copy):
    path = copy / 'val' / 'val_annotations.txt'
    lines = path.read_text().splitlines()
    path.write_text('\n'.join(lines[:2] + ['val_2.JPEG\tn99999999\t0\t0\t1\t1']) + '\n')
    with pytest.raises(ValueError, match='line 3 .*class id of wnids.txt'):
        TinyImageNetCls(str(copy), split='val')
    os.remove(copy / 'val' / 'images' / 'val_1.JPEG')
    path.write_text('\n'.join(lines) + '\n')
    with pytest.raises(FileNotFoundError, match='line 2 names .*val_1.JPEG, which does not exist'):
        TinyImageNetCls(str(copy), split='val')


def test_test_split_is_refused(tiny):
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        TinyImageNetCls(tiny, split='test')
