"""Issue 28 point 1: the labels a segmentation distillation uses are the student's own: its
decode head's ignore_index reaches the label-using losses, a padding label other than it is said
at build time, and a teacher whose config declares another label encoding, class count or class
list than the student's data is a build-time error naming both (with the opt-out)."""
import copy
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

import kdzoo.losses.dkd  # noqa: F401  (registers DKDLoss)
import kdzoo.losses.lfcc  # noqa: F401  (registers LFCCLoss)
from kdzoo.adapters.mmseg import ShapesSegDataset
from kdzoo.registry import build
from kdzoo.toydata.seg import make_seg_dataset

CONFIGS = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', 'seg')
STUDENT = Config.fromfile(os.path.join(CONFIGS, 'quickstart_student.py')).model
TEACHER = Config.fromfile(os.path.join(CONFIGS, 'quickstart_teacher.py')).model
PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')]
DKD = [dict(student='logits', teacher='logits', loss=dict(type='DKDLoss'))]


def student_ignoring(label, pad=None):
    """The quick-start student whose decode / auxiliary heads ignore ``label`` and whose data
    preprocessor pads label maps with ``pad`` (``label`` by default)."""
    student = copy.deepcopy(STUDENT)
    student.decode_head.ignore_index = label
    student.auxiliary_head.ignore_index = label
    student.data_preprocessor.seg_pad_val = label if pad is None else pad
    return student


def make(student, losses=DKD, **extra):
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match='no checkpoint'):
        return build(dict(type='DistillSegmentor', student=student, distill_cfg=dict(
            teacher=dict(config=TEACHER), losses=losses, **extra)))


@pytest.fixture(scope='module')
def batch(tmp_path_factory):
    root = make_seg_dataset(str(tmp_path_factory.mktemp('seg')), num_images=(2, 1))
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = ShapesSegDataset(data_root=root, pipeline=PIPELINE, data_prefix=dict(
            img_path='img_dir/train', seg_map_path='ann_dir/train'))
        return pseudo_collate([dataset[0], dataset[1]])


def test_label_losses_skip_the_students_ignore_index(batch):
    model = make(student_ignoring(0)).train()
    data = model.data_preprocessor(batch, True)
    for sample in data['data_samples']:  # every pixel the student's own loss ignores
        sample.gt_sem_seg.data.zero_()
    # the old code trained every one of them as class 0 (a positive DKD loss)
    assert model(**data, mode='loss')['distill.loss_dkd_0'].item() == 0.0
    labels = [sample.gt_sem_seg.data for sample in data['data_samples']]
    for label in labels:
        label[:, :8] = 3  # a strip of class 3: the only pixels distilled
    assert model(**data, mode='loss')['distill.loss_dkd_0'].item() > 0.0
    assert model.ignore_index == 0
    # the default (255) is unchanged: class 0 is a real class there
    default = make(copy.deepcopy(STUDENT)).train()
    assert default.ignore_index == 255


def test_a_padding_label_the_student_does_not_ignore_is_said_at_build():
    with pytest.warns(UserWarning, match=r"distill items \[0\] \(DKDLoss\) use labels: they skip "
                                         r"the student's decode_head.ignore_index=255, but the "
                                         r'data preprocessor pads label maps with seg_pad_val=0, '
                                         r'so padded pixels are trained as class 0 \(by the '
                                         r"student's own loss too\); set seg_pad_val=255 in the "
                                         r'data preprocessor'):
        make(student_ignoring(255, pad=0))


def test_a_padding_label_outside_the_classes_is_said_to_fail_not_to_train():
    with pytest.warns(UserWarning, match=r'seg_pad_val=255, so padded pixels carry a label outside '
                                         r"the student's \d+ classes \(its own loss and the items "
                                         r'fail on them at the first padded batch\); set '
                                         r'seg_pad_val=0'):
        make(student_ignoring(0, pad=255))
