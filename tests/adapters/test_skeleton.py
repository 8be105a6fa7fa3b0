"""The adapter skeleton (kdzoo/adapters/base.py), for every task: the student is initialised
exactly as alone, building the teacher and connectors draws nothing from the student's random
stream, the teacher sees its own normalisation, and labels reach label-using losses."""
import copy
import os
import warnings

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

import kdzoo.adapters.cls  # noqa: F401  (registers DistillClassifier)
import kdzoo.adapters.mmdet  # noqa: F401  (registers DistillDetector)
import kdzoo.adapters.mmseg  # noqa: F401  (registers DistillSegmentor)
import kdzoo.losses  # noqa: F401  (registers every loss)
from kdzoo.losses.dkd import dkd_loss
from kdzoo.registry import build
from kdzoo.rng import derive_seed, isolated_rng
from kdzoo.teacher import model_config

CONFIGS = os.path.join(os.path.dirname(__file__), '..', '..', 'configs')
SEG_STUDENT = Config.fromfile(os.path.join(CONFIGS, 'seg', 'quickstart_student.py')).model
SEG_TEACHER = Config.fromfile(os.path.join(CONFIGS, 'seg', 'quickstart_teacher.py')).model
RETINA_R18 = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'
RETINA_SWIN = 'mmdet::swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py'


def quiet_build(cfg):
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', 'distill_cfg.teacher has no checkpoint')
        return build(cfg)


# --- the RNG rule -------------------------------------------------------------------------------
def test_isolated_rng_leaves_the_global_streams_where_they_were():
    import random

    import numpy as np
    torch.manual_seed(3)
    random.seed(3)
    np.random.seed(3)
    expected = torch.rand(4), random.random(), np.random.rand()
    torch.manual_seed(3)
    random.seed(3)
    np.random.seed(3)
    with isolated_rng('x') as seed:
        inside = torch.rand(4)
        random.random(), np.random.rand()
    after = torch.rand(4), random.random(), np.random.rand()
    assert torch.equal(after[0], expected[0]) and after[1:] == expected[1:]
    torch.manual_seed(3)
    with isolated_rng('x'):
        again = torch.rand(4)
    assert torch.equal(inside, again) and seed == derive_seed(3, 'x')
    assert torch.initial_seed() == 3  # a later isolated block derives from the run's seed
    assert derive_seed(3, 'x') != derive_seed(3, 'y')
    assert derive_seed(0, 1, 2) == derive_seed(0, 1, 2)


def test_isolated_rng_queues_no_seed_for_cuda_start_up():
    """Models are built before they move to the GPU: a ``torch.manual_seed`` in the block would
    queue its seed for CUDA's start-up, replacing the run's own, so the CUDA stream (dropout)
    of a distilled run would differ from its student alone."""
    from torch.cuda import _lazy_seed_tracker
    assert not torch.cuda.is_initialized()
    torch.manual_seed(3)
    queued = _lazy_seed_tracker.get_calls()
    with isolated_rng('kdzoo.teacher'):
        torch.rand(1)
    assert _lazy_seed_tracker.get_calls() == queued


# --- the student is initialised exactly as alone -------------------------------------------------
def pretrained_backbone(model, tmp_path):
    """Give ``model``'s backbone an ``init_cfg=Pretrained`` pointing at a local file of random
    weights (seed 123): a pretrained backbone that only ``init_weights`` loads."""
    with DefaultScope.overwrite_default_scope(model['type'] == 'EncoderDecoder' and 'mmseg'
                                              or 'mmdet'):
        from mmengine.registry import MODELS
        torch.manual_seed(123)
        backbone = MODELS.build(copy.deepcopy(model['backbone']))
    path = str(tmp_path / 'backbone.pth')
    torch.save({k: v + 0.5 if v.is_floating_point() else v
                for k, v in backbone.state_dict().items()}, path)
    model = copy.deepcopy(model)
    if 'pretrained' in model:
        model['pretrained'] = None
    model['backbone']['init_cfg'] = dict(type='Pretrained', checkpoint=path)
    return model, path


def cls_case(tmp_path):
    student = dict(type='TimmClassifier', model_name='resnet10t', num_classes=5)
    teacher = dict(type='TimmClassifier', model_name='vit_tiny_patch16_224', num_classes=5,
                   img_size=32, patch_size=8, depth=2, embed_dim=32, num_heads=2)
    losses = [dict(student='model.layer3', teacher='stage3', loss=dict(type='MSELoss'),
                   connector='proj')]
    connectors = dict(proj=dict(type='Projector', in_channels=256, out_channels=32))
    return student, dict(type='DistillClassifier', student=student, distill_cfg=dict(
        teacher=dict(config=teacher), losses=losses, connectors=connectors)), None


def seg_case(tmp_path):
    student, path = pretrained_backbone(SEG_STUDENT, tmp_path)
    losses = [dict(student='stage4', teacher='stage4', loss=dict(type='LFCCLoss'),
                   connector='proj')]
    connectors = dict(proj=dict(type='Projector', in_channels=128, out_channels=256))
    return student, dict(type='DistillSegmentor', student=student, distill_cfg=dict(
        teacher=dict(config=SEG_TEACHER), losses=losses, connectors=connectors)), path


def det_case(tmp_path):
    options = {'backbone.depth': 18, 'neck.in_channels': [64, 128, 256, 512],
               'neck.out_channels': 32, 'bbox_head.in_channels': 32,
               'bbox_head.feat_channels': 32, 'bbox_head.stacked_convs': 1,
               'bbox_head.num_classes': 4}
    student, path = pretrained_backbone(model_config(RETINA_R18, options), tmp_path)
    teacher = model_config(RETINA_SWIN, {
        'backbone.init_cfg': None, 'backbone.embed_dims': 32, 'backbone.depths': [1, 1, 1, 1],
        'backbone.num_heads': [1, 2, 4, 8], 'neck.in_channels': [64, 128, 256],
        'neck.out_channels': 32, 'bbox_head.in_channels': 32, 'bbox_head.feat_channels': 32,
        'bbox_head.stacked_convs': 1, 'bbox_head.num_classes': 4})
    losses = [dict(student='neck', teacher='neck', loss=dict(type='PKDLoss'), connector='proj')]
    connectors = dict(proj=dict(type='Projector', in_channels=32, out_channels=32))
    return student, dict(type='DistillDetector', student=student,
                         data_preprocessor=student['data_preprocessor'], distill_cfg=dict(
                             teacher=dict(config=teacher), losses=losses,
                             connectors=connectors)), path


def build_alone(cfg):
    if cfg['type'] == 'TimmClassifier':
        return build(cfg)
    scope = 'mmseg' if cfg['type'] == 'EncoderDecoder' else 'mmdet'
    with DefaultScope.overwrite_default_scope(scope):
        from mmengine.registry import MODELS
        return MODELS.build(cfg)


@pytest.mark.parametrize('case', [cls_case, seg_case, det_case], ids=['cls', 'seg', 'det'])
def test_student_is_initialised_as_alone_and_the_stream_goes_on_unshifted(case, tmp_path):
    student_cfg, wrapped_cfg, pretrained = case(tmp_path)
    torch.manual_seed(7)
    alone = build_alone(copy.deepcopy(student_cfg))
    alone.init_weights()
    next_alone = torch.rand(8)
    torch.manual_seed(7)
    model = quiet_build(copy.deepcopy(wrapped_cfg))
    model.init_weights()
    next_wrapped = torch.rand(8)
    expected, got = alone.state_dict(), model.student.state_dict()
    assert list(got) == list(expected)
    different = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not different, f'{len(different)} student tensors differ, e.g. {different[:3]}'
    assert torch.equal(next_alone, next_wrapped), 'building the teacher shifted the global stream'
    if pretrained:  # the pretrained backbone was really loaded (not just equally random)
        weights = torch.load(pretrained, weights_only=True)
        key = next(k for k in weights if k.endswith('conv1.weight') or k.endswith('stem.0.weight'))
        assert torch.equal(model.student.backbone.state_dict()[key], weights[key])


def test_teacher_with_checkpoint_is_not_reinitialised(tmp_path):
    _, wrapped_cfg, _ = seg_case(tmp_path)
    torch.manual_seed(1)
    teacher = build_alone(copy.deepcopy(SEG_TEACHER))
    teacher.init_weights()
    path = str(tmp_path / 'teacher.pth')
    torch.save(teacher.state_dict(), path)
    wrapped_cfg['distill_cfg']['teacher']['checkpoint'] = path
    model = build(wrapped_cfg)
    model.init_weights()
    for key, value in teacher.state_dict().items():
        assert torch.equal(model.teacher.state_dict()[key], value), key


# --- the teacher sees its own normalisation ------------------------------------------------------
@pytest.fixture(scope='module')
def seg_batch(tmp_path_factory):
    from kdzoo.adapters.mmseg import ShapesSegDataset
    from kdzoo.toydata.seg import make_seg_dataset
    root = make_seg_dataset(str(tmp_path_factory.mktemp('seg')), num_images=(2, 1))
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                dict(type='PackSegInputs')]
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = ShapesSegDataset(data_root=root, pipeline=pipeline, data_prefix=dict(
            img_path='img_dir/train', seg_map_path='ann_dir/train'))
        return pseudo_collate([dataset[0], dataset[1]])


def test_seg_teacher_gets_its_own_normalisation(seg_batch):
    teacher = copy.deepcopy(SEG_TEACHER)
    teacher['data_preprocessor'].update(mean=[10.0, 20.0, 30.0], std=[2.0, 3.0, 4.0],
                                        bgr_to_rgb=False)
    model = quiet_build(dict(type='DistillSegmentor', student=SEG_STUDENT, distill_cfg=dict(
        teacher=dict(config=teacher), losses=[dict(student='logits', teacher='logits',
                                                   loss=dict(type='KDLoss'))])))
    seen = []
    model.teacher.backbone.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    data = model.data_preprocessor(copy.deepcopy(seg_batch), True)
    model(**data, mode='loss')
    own = model.teacher.data_preprocessor(copy.deepcopy(seg_batch), True)['inputs']
    assert not torch.allclose(data['inputs'], own, atol=1e-2)  # the two normalisations differ
    assert torch.allclose(seen[0], own, atol=1e-4)
    with model.predicting_with_teacher():  # the teacher check sees the same
        model(**model.data_preprocessor(copy.deepcopy(seg_batch), False), mode='tensor')
    alone = model.teacher.data_preprocessor(copy.deepcopy(seg_batch), False)['inputs']
    assert torch.allclose(seen[1], alone, atol=1e-4)


# --- labels reach label-using losses -------------------------------------------------------------
def test_dkd_on_seg_logits_trains_with_label_maps(seg_batch):
    model = quiet_build(dict(type='DistillSegmentor', student=SEG_STUDENT, distill_cfg=dict(
        teacher=dict(config=SEG_TEACHER), losses=[dict(student='logits', teacher='logits',
                                                       loss=dict(type='DKDLoss'))])))
    model.train()
    data = model.data_preprocessor(copy.deepcopy(seg_batch), True)
    for sample in data['data_samples']:  # ignored pixels: the top rows
        sample.gt_sem_seg.data[:, :16] = 255
    readouts = {}
    model.student.decode_head.register_forward_hook(lambda m, a, out: readouts.update(s=out))
    model.teacher.decode_head.register_forward_hook(lambda m, a, out: readouts.update(t=out))
    losses = model(**data, mode='loss')
    value = losses['distill.loss_dkd_0']
    value.backward()
    assert model.student.decode_head.conv_seg.weight.grad.abs().sum() > 0
    # independent: bilinear to the smaller grid, labels nearest (255 kept, then dropped), DKD
    student, teacher = readouts['s'].detach().float(), readouts['t'].float()
    size = tuple(min(a, b) for a, b in zip(student.shape[-2:], teacher.shape[-2:]))
    student = F.interpolate(student, size, mode='bilinear', align_corners=False)
    teacher = F.interpolate(teacher, size, mode='bilinear', align_corners=False)
    labels = torch.stack([s.gt_sem_seg.data[0] for s in data['data_samples']]).float()
    labels = F.interpolate(labels[:, None], size, mode='nearest')[:, 0].long().reshape(-1)
    keep = labels != 255
    assert 0 < keep.sum() < labels.numel()
    flat = lambda x: x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])[keep]  # noqa: E731
    expected = dkd_loss(flat(student), flat(teacher), labels[keep])
    assert torch.allclose(value.detach(), expected, rtol=1e-5)


def test_label_using_loss_on_detection_is_a_build_error(tmp_path):
    _, wrapped_cfg, _ = det_case(tmp_path)
    wrapped_cfg['distill_cfg']['losses'] = [
        dict(student='cls_scores', teacher='cls_scores', loss=dict(type='DKDLoss'))]
    with pytest.raises(ValueError, match=r'distill item 0: DKDLoss needs a ground-truth class '
                                         r'per sample, but detection has none per location'):
        quiet_build(wrapped_cfg)


# --- the step path: items parsed once, the runner's iteration, the teacher's precision ----------
KD = dict(student='logits', teacher='logits', loss=dict(type='KDLoss'))


def cls_model(losses):
    _, wrapped_cfg, _ = cls_case(None)
    wrapped_cfg['distill_cfg'].update(losses=losses, connectors=None)
    torch.manual_seed(0)
    return quiet_build(wrapped_cfg)


def cls_batch():
    generator = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 32, 32, generator=generator) * 255, torch.tensor([0, 3])


def test_items_are_parsed_once_per_build(monkeypatch):
    import kdzoo.adapters.base
    import kdzoo.distiller
    parsed, parse = [], kdzoo.distiller.parse_items

    def counted(losses, *args):
        parsed.append(losses)
        return parse(losses, *args)
    for module in (kdzoo.distiller, kdzoo.adapters.base):
        monkeypatch.setattr(module, 'parse_items', counted)
    model = cls_model([KD, dict(KD, name='kd')])
    assert len(parsed) == 1
    assert [item.name for item in model.distiller.items] == ['kd_0', 'kd']


@pytest.fixture
def runner_iteration():
    """Sets the iteration of a runner's message hub (MMEngine's current instance)."""
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('test_skeleton_iteration')
    yield lambda iteration: hub.update_info('iter', iteration)
    hub.update_info('iter', None)


def test_the_runners_iteration_reaches_warmup_and_messages(runner_iteration):
    from kdzoo.finite import NonFiniteError
    model = cls_model([dict(KD, warmup_iters=4), dict(KD, name='full')]).train()

    def warmup(losses):
        return float(losses['distill.loss_kd_0'].detach() / losses['distill.loss_full'].detach())
    runner_iteration(None)  # outside a runner: the training steps taken so far
    assert [warmup(model(*cls_batch(), mode='loss')) for _ in range(2)] == \
        pytest.approx([0.25, 0.5])
    runner_iteration(2)
    assert warmup(model(*cls_batch(), mode='loss')) == pytest.approx(0.75)
    runner_iteration(6)
    with torch.no_grad():
        model.teacher.model.head.bias[1] = float('nan')
    with pytest.raises(NonFiniteError, match=r"'kd_0' .* at iteration 7: the teacher side"):
        model.parse_losses(model(*cls_batch(), mode='loss'))  # the step's one read


def test_teacher_autocast_runs_the_teacher_in_that_precision():
    model = cls_model([KD])
    images, labels = cls_batch()
    assert model.teacher_autocast is None
    with model.distiller.step():
        _, student, teacher = model.recorded_step(images, labels)
    assert student['logits'].dtype == teacher['teacher']['logits'].dtype == torch.float32
    model.teacher_autocast = torch.bfloat16
    with model.distiller.step():
        _, student, teacher = model.recorded_step(images, labels)
    assert student['logits'].dtype == torch.float32
    assert teacher['teacher']['logits'].dtype == torch.bfloat16
    losses = model.train()(images, labels, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    assert model(images, mode='tensor').dtype == torch.float32
    with model.predicting_with_teacher():  # the teacher check runs the teacher the same way
        assert model(images, mode='tensor').dtype == torch.bfloat16
