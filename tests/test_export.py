"""ONNX export of the quick-start students (kdzoo/export.py, tools/export_student.py --onnx):
the graph takes raw 0-255 NCHW images with any batch size, and matches PyTorch and the frameworks'
own inference; a parity failure is an error."""
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from kdzoo.export import (
    OPSET,
    ParityError,
    build_student,
    check_parity,
    export_onnx,
    export_student,
    graph_of,
    run_onnx,
)
from kdzoo.runner import load_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def config_path(*parts):
    return os.path.join(REPO, 'configs', *parts)


def plain_run_checkpoint(model, path, prefix=''):
    """A checkpoint as tools/train.py writes it (``prefix='distiller.student.'``: a distillation
    run's), of ``model``'s current weights."""
    torch.save({'state_dict': {prefix + k: v for k, v in model.state_dict().items()}}, path)
    return str(path)


def check_graph_file(path, output_names):
    """Opset, input name and dtype, a symbolic batch dimension, the output names."""
    model = onnx.load(path)
    assert {o.domain: o.version for o in model.opset_import}[''] == OPSET
    (inputs,) = model.graph.input
    assert inputs.name == 'inputs' and inputs.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert inputs.type.tensor_type.shape.dim[0].dim_param  # the dynamic batch axis
    assert [o.name for o in model.graph.output] == output_names


def test_cls_quickstart_student_command_line(tmp_path):
    """tools/export_student.py --onnx on a distillation checkpoint of the quick-start ViT student:
    parity printed; the graph gives the student's logits (B, K) for raw images, any batch."""
    from kdzoo.toydata import make_shapes_dataset
    data = make_shapes_dataset(str(tmp_path / 'data'), num_classes=10, per_class=(1, 1))
    config = config_path('quickstart', 'msdcrd.py')
    options = [f'val_dataloader.dataset.root={data["val"]}']
    cfg = load_config(config, {'val_dataloader.dataset.root': data['val']})
    torch.manual_seed(0)
    student = build_student(cfg, None)
    checkpoint = plain_run_checkpoint(student, tmp_path / 'iter_2.pth', 'distiller.student.')
    out = subprocess.run(
        [sys.executable, 'tools/export_student.py', config, checkpoint, str(tmp_path / 's.pth'),
         '--onnx', str(tmp_path / 's.onnx'), '--cfg-options', *options],
        cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'input inputs float32 (B, 3, 32, 32), B dynamic, 0-255' in out.stdout
    assert 'parity (onnxruntime vs PyTorch, batch of 8): max abs difference' in out.stdout
    check_graph_file(str(tmp_path / 's.onnx'), ['logits'])
    assert not (tmp_path / 's.onnx.data').exists()  # one file: the weights inside
    images = torch.rand(3, 3, 32, 32) * 255
    with torch.no_grad():
        expected = student(images, mode='tensor')
    for batch in (1, 3):
        (logits,) = run_onnx(str(tmp_path / 's.onnx'), images[:batch])
        assert logits.shape == (batch, 10)
        assert np.allclose(logits, expected[:batch].numpy(), atol=1e-4)


def test_input_shape_and_image_options_and_parity_above_tolerance(tmp_path, monkeypatch):
    """``input_shape`` and ``image`` (one image file for the parity check); a graph whose
    outputs differ from PyTorch's by more than the tolerance is refused."""
    import glob

    import kdzoo.export
    from kdzoo.toydata import make_shapes_dataset
    data = make_shapes_dataset(str(tmp_path / 'data'), num_classes=10, per_class=(1, 1))
    cfg = load_config(config_path('quickstart', 'student.py'),
                      {'model.depth': 1, 'val_dataloader.dataset.root': data['val']})
    weights = build_student(cfg, None).model.state_dict()
    image = sorted(glob.glob(os.path.join(data['val'], '*', '*.png')))[0]
    report = export_onnx(cfg, weights, str(tmp_path / 's.onnx'), input_shape=(48, 40),
                         image=image)
    assert report.input_shape == (48, 40) and report.output_shapes == [(1, 10)]
    assert report.max_abs_diff <= 1e-4
    graph, _ = graph_of(cfg, build_student(cfg, weights), report.input_shape)
    inputs = torch.rand(2, 3, 48, 40) * 255
    run = kdzoo.export.run_onnx
    monkeypatch.setattr(kdzoo.export, 'run_onnx', lambda p, x: [y + 0.01 for y in run(p, x)])
    with pytest.raises(ParityError, match=r'ONNX parity failed: 0\.01 > 0\.001'):
        check_parity(graph, str(tmp_path / 's.onnx'), inputs, 1e-3)


@pytest.fixture(autouse=True)
def unformatted_config_dumps(monkeypatch):
    """MMEngine formats configs with yapf when it copies them (seconds for an mmdet config)."""
    from yapf.yapflib import yapf_api
    monkeypatch.setattr(yapf_api, 'FormatCode', lambda text, **kwargs: (text, None))


def test_seg_quickstart_student_matches_mmseg_inference(tmp_path):
    """The seg quick-start student's graph: seg_logits (B, K, H, W) equal to mmseg's predict on
    the same images through its data preprocessor (BGR flip and mean / std inside the graph)."""
    pytest.importorskip('mmseg', reason='segmentation needs the full install')
    from kdzoo.export import first_val_images
    from kdzoo.toydata import make_seg_dataset
    root = make_seg_dataset(str(tmp_path / 'data'), num_images=(1, 3))
    config = config_path('seg', 'quickstart_student.py')
    options = {'val_dataloader.dataset.data_root': root, 'val_dataloader.batch_size': 3,
               'val_dataloader.num_workers': 0, 'val_dataloader.persistent_workers': False}
    cfg = load_config(config, options)
    torch.manual_seed(0)
    checkpoint = plain_run_checkpoint(build_student(cfg, None), tmp_path / 'iter_2.pth')
    weights = export_student(config, checkpoint, str(tmp_path / 's.pth'), options)
    report = export_onnx(cfg, weights, str(tmp_path / 's.onnx'))
    assert report.input_shape == (64, 64) and report.max_abs_diff <= 1e-4
    check_graph_file(str(tmp_path / 's.onnx'), ['seg_logits'])
    model = build_student(cfg, weights)
    images = first_val_images(cfg)
    data = model.data_preprocessor({'inputs': [i.to(torch.uint8) for i in images],
                                    'data_samples': None}, False)
    with torch.no_grad():
        expected = model.predict(data['inputs'])
    for batch in (1, 3):
        (logits,) = run_onnx(str(tmp_path / 's.onnx'), torch.stack(images[:batch]))
        assert logits.shape == (batch, 10, 64, 64)
        for got, sample in zip(logits, expected):
            assert np.allclose(got, sample.seg_logits.data.numpy(), atol=1e-4)


def test_det_quickstart_student_outputs_decode_as_mmdet_predicts(tmp_path):
    """The det quick-start student's graph: the head's per-level outputs, equal to mmdet's
    ``_forward`` through its data preprocessor; decoded with the head's ``predict_by_feat`` they
    give mmdet's boxes."""
    pytest.importorskip('mmdet', reason='detection needs the full install')
    from kdzoo.export import first_val_images
    from kdzoo.toydata import make_det_dataset
    data = make_det_dataset(str(tmp_path / 'data'), num_images=(1, 2), size=128)
    config = config_path('det', 'quickstart_retinanet_r18.py')
    options = {'val_dataloader.dataset.data_root': data['root'] + '/',
               'val_evaluator.ann_file': data['val_ann']}
    cfg = load_config(config, options)
    torch.manual_seed(0)
    model = build_student(cfg, None)
    model.init_weights()
    checkpoint = plain_run_checkpoint(model, tmp_path / 'iter_2.pth')
    weights = export_student(config, checkpoint, str(tmp_path / 's.pth'), options)
    report = export_onnx(cfg, weights, str(tmp_path / 's.onnx'))
    names = [f'{kind}_{level}' for kind in ('cls_scores', 'bbox_preds') for level in range(5)]
    assert report.output_names == names and report.input_shape == (128, 128)
    assert report.max_abs_diff <= 1e-3
    check_graph_file(str(tmp_path / 's.onnx'), names)
    images = first_val_images(cfg)
    data = model.data_preprocessor({'inputs': [i.to(torch.uint8) for i in images]}, False)
    with torch.no_grad():
        cls_scores, bbox_preds = model._forward(data['inputs'])
    got = [torch.from_numpy(o) for o in run_onnx(str(tmp_path / 's.onnx'), torch.stack(images))]
    for a, b in zip(got, list(cls_scores) + list(bbox_preds)):
        assert torch.allclose(a, b, atol=1e-3)
    metas = [dict(img_shape=(128, 128), scale_factor=(1.0, 1.0))] * len(images)
    test_cfg = model.bbox_head.test_cfg.copy()
    test_cfg.update(score_thr=0.0, max_per_img=20)  # a random head scores ~0.01 everywhere

    def decode(scores, boxes):
        with torch.no_grad():
            return model.bbox_head.predict_by_feat(scores, boxes, batch_img_metas=metas,
                                                   cfg=test_cfg, rescale=False)
    for ours, mmdet in zip(decode(got[:5], got[5:]), decode(list(cls_scores), list(bbox_preds))):
        assert len(ours.bboxes) == len(mmdet.bboxes) == 20
        assert torch.allclose(ours.bboxes, mmdet.bboxes, atol=1e-2)


def test_image_is_resized_to_the_graph_size_and_does_not_set_it(tmp_path):
    """``--image`` of another size than the validation images: the graph keeps the first
    validation image's size (docs/deploy.md), said in the report; it set the size silently."""
    from PIL import Image

    from kdzoo.toydata import make_shapes_dataset
    data = make_shapes_dataset(str(tmp_path / 'data'), num_classes=10, per_class=(1, 1))
    cfg = load_config(config_path('quickstart', 'student.py'),
                      {'model.depth': 1, 'val_dataloader.dataset.root': data['val']})
    weights = build_student(cfg, None).model.state_dict()
    Image.new('RGB', (40, 48), (200, 10, 10)).save(tmp_path / 'other.png')
    report = export_onnx(cfg, weights, str(tmp_path / 's.onnx'), image=str(tmp_path / 'other.png'))
    assert report.input_shape == (32, 32) and report.output_shapes == [(1, 10)]
    assert ('input size 32 x 32 from the first validation image (--input-shape H W to change)'
            in report.lines())


def test_two_stage_onnx_is_refused_before_any_forward(monkeypatch):
    """A Faster R-CNN student: the documented refusal, not a TypeError from its ``_forward``."""
    pytest.importorskip('mmdet', reason='detection needs the full install')
    cfg = load_config(config_path('det', 'cwd_mask-rcnn_swin-t-to-faster-rcnn_r50_fpn_coco.py'))
    model = build_student(cfg, None)

    def no_forward(*args, **kwargs):
        raise AssertionError('the detector ran a forward before the refusal')
    monkeypatch.setattr(model, '_forward', no_forward)
    monkeypatch.setattr(model, 'forward', no_forward)
    with pytest.raises(ValueError) as err:
        graph_of(cfg, model, (64, 64))
    assert str(err.value) == (
        'FasterRCNN: ONNX export covers detectors whose _forward returns the dense head\'s '
        'per-level outputs (one-stage detectors: RetinaNet, FCOS, ATSS, GFL, ...); this one is '
        'a two-stage detector (rpn_head, then roi_head on its proposals), refused')


def test_det_export_refuses_another_model_and_out_equal_to_ckpt(tmp_path):
    """Detection: a checkpoint of another detector (another class count) is refused naming the
    mismatched tensors, and OUT == CKPT is refused; nothing is written, CKPT is kept."""
    pytest.importorskip('mmdet', reason='detection needs the full install')
    from kdzoo.checkpoint import CheckpointError
    from kdzoo.export import ExportError
    config = config_path('det', 'quickstart_retinanet_r18.py')
    other = build_student(load_config(config, {'model.bbox_head.num_classes': 3}), None)
    checkpoint = plain_run_checkpoint(other, tmp_path / 'iter_2.pth')
    with pytest.raises(CheckpointError) as err:
        export_student(config, checkpoint, str(tmp_path / 's.pth'))
    assert str(err.value).startswith(
        f'checkpoint {checkpoint} does not hold the student of this config (RetinaNet): 146 of its '
        '148 tensors match; mismatched keys (2): bbox_head.retina_cls.bias (27,) vs model (90,), '
        'bbox_head.retina_cls.weight (27, 64, 3, 3) vs model (90, 64, 3, 3). Give a checkpoint')
    assert not (tmp_path / 's.pth').exists()
    before = (tmp_path / 'iter_2.pth').read_bytes()
    with pytest.raises(ExportError, match=f'^export_student: OUT {checkpoint} is the checkpoint '
                                          'CKPT itself'):
        export_student(config, checkpoint, checkpoint)
    assert (tmp_path / 'iter_2.pth').read_bytes() == before


def test_parity_on_non_finite_pytorch_outputs_blames_no_operator(tmp_path):
    """Finite weights can still compute Inf / NaN; the parity error says so instead of blaming
    an operator exported differently."""
    graph = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2)).eval()
    torch.nn.init.constant_(graph[1].weight, 3e38)
    with pytest.raises(ParityError) as err:
        check_parity(graph, str(tmp_path / 'never_read.onnx'), torch.full((2, 3, 2, 2), 255.0))
    assert str(err.value) == (
        "PyTorch's own outputs of the student hold NaN or Inf on the parity batch of 2: the "
        f'weights or the input compute them, not an operator of the graph; do not deploy '
        f'{tmp_path}/never_read.onnx.')


def test_seg_test_with_classes_in_another_order_is_refused(tmp_path):
    """tools/test.py on a seg student whose checkpoint records the data's classes in another
    order: label k would be scored as another class; refused with both lists."""
    pytest.importorskip('mmseg', reason='segmentation needs the full install')
    from kdzoo.class_names import ClassNamesError
    from kdzoo.toydata import make_seg_dataset
    from tools.test import main as test_main
    root = make_seg_dataset(str(tmp_path / 'data'), num_images=(1, 2))
    config = config_path('seg', 'quickstart_student.py')
    options = {f'{split}_dataloader.dataset.data_root': root for split in ('train', 'val', 'test')}
    model = build_student(load_config(config, options), None)
    from mmengine.registry import DATASETS, DefaultScope
    with DefaultScope.overwrite_default_scope('mmseg'):
        classes = list(DATASETS.build(load_config(config, options).test_dataloader.dataset)
                       .metainfo['classes'])
    checkpoint = str(tmp_path / 'iter_2.pth')
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': {'classes': classes[::-1]}}}, checkpoint)
    with pytest.raises(ClassNamesError) as err:
        test_main([config, checkpoint, '--work-dir', str(tmp_path / 'test'), '--cfg-options',
                   *[f'{k}={v}' for k, v in options.items()]])
    assert str(err.value).startswith(
        f'student checkpoint {checkpoint} was trained on other classes than the data: the same '
        f'{len(classes)} classes in another order ({len(classes)} at other labels).\n')


def test_out_as_a_hard_link_to_the_checkpoint_is_refused(tmp_path):
    import os

    from kdzoo.export import ExportError, check_paths
    checkpoint = tmp_path / 'iter_2.pth'
    checkpoint.write_bytes(b'the training checkpoint')
    os.link(checkpoint, tmp_path / 'hard.pth')
    with pytest.raises(ExportError, match='is the checkpoint CKPT itself'):
        check_paths(str(checkpoint), str(tmp_path / 'hard.pth'))
    check_paths(str(checkpoint), str(tmp_path / 'student.pth'))  # a new file is fine
