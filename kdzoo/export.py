"""From a training checkpoint to a deployable student: the student-only checkpoint, and an ONNX
graph checked against PyTorch with onnxruntime (``kdzoo export``; docs/deploy.md).

The ONNX contract, the same for the three tasks:

- one input ``inputs``: float32 ``(B, 3, H, W)``, raw pixel values 0-255 in the channel order the
  config's data pipeline loads them (RGB for kdzoo's classification sets; BGR for mmcv's
  ``LoadImageFromFile``, mmseg's and mmdet's loader). The model's normalisation is inside the
  graph: the classifier's own resize and mean / std (:class:`TimmClassifier.preprocess`), or the
  mmseg / mmdet data preprocessor's channel flip and mean / std. Padding is not: the input must
  already have the graph's ``H, W``;
- ``B`` is dynamic; ``H, W`` are fixed at export: by default the size of the first validation
  image (the config's validation pipeline), rounded up to the data preprocessor's
  ``pad_size_divisor`` for mmdet; ``input_shape`` changes it (the parity ``image`` does not);
- outputs: classification ``logits`` ``(B, K)`` (the timm student's); segmentation
  ``seg_logits`` ``(B, K, H, W)`` (``EncoderDecoder.encode_decode``: the decode head's logits
  resized to the input, what mmseg's whole-image inference computes); detection the dense head's
  raw outputs per level, named after the head's ``predict_by_feat`` arguments
  (``cls_scores_0`` .. ``bbox_preds_0`` ..), with anchor decoding and NMS (mmdet's
  ``predict_by_feat``) left outside the graph;
- ONNX opset :data:`OPSET`, written by ``torch.onnx.export(dynamo=True)`` (needs onnxscript);
  one file, weights inside (beside it, in ``<path>.data``, from :data:`EXTERNAL_DATA_BYTES`).

The task's descriptor (:mod:`kdzoo.tasks`) supplies what differs by task: the bare student model,
its export keys and file form, the graph module and its output names, the channel order and the
padding of the input.

Parity: the first validation batch (at most :data:`PARITY_IMAGES` images), or one image file,
resized to ``H, W``, goes through the graph in onnxruntime and through the same module in PyTorch;
the largest absolute difference over all outputs is printed, and above ``tolerance`` (default
:data:`TOLERANCE`) :class:`ParityError` is raised.
"""
import copy
import os
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from kdzoo import tasks
from kdzoo.adapters import student_state_dict
from kdzoo.checkpoint import (
    CheckpointError,
    describe_fit,
    listing,
    load_file,
    nonfinite_keys,
    state_dict_of,
)
from kdzoo.class_names import check_class_names, dataset_classes, recorded_classes
from kdzoo.runner import load_config

OPSET = 18
TOLERANCE = 1e-3
PARITY_IMAGES = 8
EXTERNAL_DATA_BYTES = 1 << 30


class ParityError(RuntimeError):
    """onnxruntime's outputs differ from PyTorch's by more than the tolerance."""


class ExportError(ValueError):
    """An export that would overwrite its input, or an impossible graph input size."""


def same_file(a, b):
    """Whether real paths ``a`` and ``b`` name one file: the same path, or two hard links to
    it (the same device and inode)."""
    return a == b or (os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b))


def check_paths(checkpoint, out, onnx=None):
    """Refuse an export that would write over its own input: ``out`` or ``onnx`` the checkpoint
    ``checkpoint`` itself, or ``onnx`` the same file as ``out`` (real paths and inodes compared,
    so a symbolic or hard link or a ``./`` prefix is seen through); and ``out`` or ``onnx``
    naming a folder."""
    real = {name: os.path.realpath(os.path.expanduser(str(path)))
            for name, path in (('CKPT', checkpoint), ('OUT', out), ('--onnx', onnx)) if path}
    for name in ('OUT', '--onnx'):
        if name in real and same_file(real[name], real['CKPT']):
            raise ExportError(
                f'export_student: {name} {real[name]} is the checkpoint CKPT itself: writing it '
                'would replace the training checkpoint. Give another path for ' + name + '.')
    for name in ('OUT', '--onnx'):
        if name in real and os.path.isdir(real[name]):
            suffix = '.onnx' if name == '--onnx' else '.pth'
            example = os.path.join(real[name], 'student' + suffix)
            raise ExportError(f'export_student: {name} {real[name]} is a folder; give the path of '
                              f'the file to write, e.g. {example}.')
    if '--onnx' in real and same_file(real['--onnx'], real['OUT']):
        raise ExportError(
            f'export_student: --onnx and OUT are the same file ({real["OUT"]}): the graph would '
            'overwrite the student checkpoint. Give the graph another path (e.g. student.onnx).')


def check_input_shape(input_shape):
    """``input_shape`` is ``None`` or two positive integers ``(H, W)``."""
    if input_shape is None:
        return
    shape = tuple(input_shape)
    if len(shape) != 2 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ExportError(
            f'--input-shape {" ".join(str(s) for s in shape)}: the graph\'s input height and '
            'width must be two positive integers (H W), e.g. --input-shape 224 224.')


def check_student(cfg, weights, source):
    """The exported ``weights`` must be exactly the config's student: the plain model's keys and
    shapes (a checkpoint of another model, e.g. the teacher, is refused naming the differences)
    and finite values (NaN or Inf refused, naming the tensors)."""
    model = tasks.of_config(cfg).plain_model(build_student(cfg, None))
    own = model.state_dict()
    filled, problems = describe_fit(own, weights)
    if problems:
        raise CheckpointError(
            f'checkpoint {source} does not hold the student of this config '
            f'({type(model).__name__}): {filled} of its {len(own)} tensors match; {problems}. '
            'Give a checkpoint of a run of this config (its distillation run or its student '
            'trained alone); nothing was written.')
    nonfinite = nonfinite_keys(model, weights)
    if nonfinite:
        raise CheckpointError(
            f'checkpoint {source} holds non-finite values (NaN or Inf) in {len(nonfinite)} '
            f'tensors of the student: {listing(nonfinite)}; the exported model would compute '
            'NaN. Export a checkpoint saved before the training diverged; nothing was written.')


def data_classes(cfg):
    """The class names of the config's validation data (its dataset's ``metainfo``), or ``None``
    with a warning when the data cannot be read here (nothing to compare them with)."""
    from mmengine.registry import DATASETS, DefaultScope

    try:
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
            dataset = DATASETS.build(copy.deepcopy(cfg.val_dataloader.dataset))
    except (OSError, ValueError, KeyError) as err:
        warnings.warn(f'export_student: the config\'s validation data could not be read ({err}); '
                      'the class names of the checkpoint were not compared with it')
        return None
    return dataset_classes(dataset)


def export_student(config, checkpoint, out, cfg_options=None, onnx=None,
                   ignore_class_names=False):
    """Write the student of a training ``checkpoint`` (a distillation run's or a plain run's) to
    ``out``, keyed as the plain framework model expects; returns the weights. ``cfg_options``:
    overrides of the config's keys (a dict, as ``--cfg-options`` gives it); ``onnx``: the graph's
    path, if one is to be written next (refused when it is ``out`` or ``checkpoint``).

    Before anything is written (docs/deploy.md): ``out`` and ``onnx`` are not ``checkpoint``
    (:func:`check_paths`), the weights are the config's student with finite values
    (:func:`check_student`), and the class names the checkpoint records are the validation
    data's (:func:`kdzoo.class_names.check_class_names`; ``ignore_class_names`` skips that).

    Classification: a plain state dict that loads with ``timm.create_model(name,
    num_classes=K).load_state_dict(torch.load(out))``; mmdet / mmseg: ``{'state_dict': ...,
    'meta': ...}`` for ``mmdet.apis.init_detector`` / ``mmseg.apis.init_model``.
    """
    check_paths(checkpoint, out, onnx)
    cfg = load_config(config, cfg_options)
    loaded = load_file(checkpoint)
    weights = student_state_dict(cfg, state_dict_of(loaded))
    check_student(cfg, weights, checkpoint)
    if not ignore_class_names:
        check_class_names(recorded_classes(loaded), data_classes(cfg), checkpoint, 'student',
                          '--ignore-class-names')
    meta = {'exported_by': 'kdzoo'}
    if isinstance(loaded.get('meta'), dict) and 'dataset_meta' in loaded['meta']:
        meta['dataset_meta'] = loaded['meta']['dataset_meta']  # class names for init_model
    payload = ({'state_dict': weights, 'meta': meta} if tasks.of_config(cfg).exports_checkpoint
               else weights)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    torch.save(payload, out)
    return weights


# --- the student as a graph ------------------------------------------------------------------

def build_student(cfg, weights):
    """The config's plain student model (eval mode) with the exported ``weights`` loaded
    strictly: plain timm keys for classification, the mmseg / mmdet model's keys otherwise;
    ``weights=None`` keeps the model's initialisation."""
    task = tasks.of_config(cfg)
    model = task.build(copy.deepcopy(cfg.model)).eval()
    if weights is not None:
        task.plain_model(model).load_state_dict(weights, strict=True)
    return model


def graph_of(cfg, model, size):
    """``(graph module, output names)`` of the student for the config's task (its descriptor's
    ``onnx_graph``)."""
    return tasks.of_config(cfg).onnx_graph(model, size)


# --- inputs ----------------------------------------------------------------------------------

def first_val_images(cfg, limit=PARITY_IMAGES):
    """Up to ``limit`` images of the config's first validation batch, as the validation pipeline
    gives them to the data preprocessor: float ``(3, h, w)`` tensors, 0-255."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    loader = copy.deepcopy(cfg.val_dataloader)
    loader.update(num_workers=0, persistent_workers=False)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        batch = next(iter(Runner.build_dataloader(loader)))
    return [image.float() for image in list(batch['inputs'])[:limit]]


def read_image(path, cfg):
    """One image file as a float ``(3, h, w)`` 0-255 tensor, in the channel order of the
    config's loader: RGB (PIL) for classification, BGR (mmcv) for mmseg / mmdet."""
    import numpy as np
    from PIL import Image

    try:
        rgb = np.asarray(Image.open(path).convert('RGB'))
    except OSError as err:  # missing, unreadable or not an image (PIL's UnidentifiedImageError)
        raise ExportError(f'--image {path}: cannot be read as an image ({err}); give an image '
                          'file of the kind the config\'s data holds (PNG, JPEG, ...).') from err
    array = rgb[..., ::-1] if tasks.of_config(cfg).bgr else rgb
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float()


def default_size(cfg, model, image):
    """The graph's ``(H, W)``: the image's, rounded up to the data preprocessor's
    ``pad_size_divisor`` for mmdet (its FPN needs it)."""
    size = tuple(image.shape[-2:])
    divisor = 1
    if tasks.of_config(cfg).pads_to_divisor:
        divisor = getattr(model.data_preprocessor, 'pad_size_divisor', 1)
    return tuple(-(-s // divisor) * divisor for s in size)


def batch_of(images, size):
    """The images resized (bilinear) to ``size`` and stacked: float32 ``(B, 3, H, W)``."""
    resized = [image if tuple(image.shape[-2:]) == tuple(size) else
               nn.functional.interpolate(image[None], size=tuple(size), mode='bilinear',
                                         align_corners=False)[0] for image in images]
    return torch.stack(resized).float()


# --- export and parity ------------------------------------------------------------------------

@dataclass
class OnnxReport:
    """What :func:`export_onnx` wrote and measured."""
    path: str
    input_shape: tuple
    output_names: list
    output_shapes: list
    max_abs_diff: float
    tolerance: float
    opset: int = OPSET
    size_from: str = ''

    def lines(self):
        shapes = ', '.join(f'{n} {tuple(s)}' for n, s in zip(self.output_names, self.output_shapes))
        return [f'wrote {self.path} (opset {self.opset}): input inputs float32 '
                f'(B, 3, {self.input_shape[0]}, {self.input_shape[1]}), B dynamic, 0-255, '
                f'normalisation inside the graph; outputs {shapes}'] + (
                    [f'input size {self.input_shape[0]} x {self.input_shape[1]} from '
                     f'{self.size_from}'] if self.size_from else []) + [
                f'parity (onnxruntime vs PyTorch, batch of {self.output_shapes[0][0]}): max abs '
                f'difference {self.max_abs_diff:.3g} (tolerance {self.tolerance:g})']


def write_onnx(graph, example, path, output_names):
    """``torch.onnx.export`` (dynamo, opset :data:`OPSET`) of ``graph`` with a dynamic batch; the
    weights inside the one file, or beside it (``path + '.data'``) from
    :data:`EXTERNAL_DATA_BYTES` on (an ONNX file cannot exceed 2 GiB)."""
    import onnxscript  # noqa: F401  (the dynamo exporter's dependency: fail early and clearly)
    batch = torch.export.Dim('batch', min=1)
    size = sum(t.numel() * t.element_size() for t in graph.state_dict().values())
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(graph, (example,), path, input_names=['inputs'],
                          output_names=output_names, opset_version=OPSET, dynamo=True,
                          dynamic_shapes={'inputs': {0: batch}}, verbose=False,
                          external_data=size >= EXTERNAL_DATA_BYTES)


def run_onnx(path, inputs):
    """The graph's outputs on ``inputs`` in onnxruntime (CPU)."""
    import onnxruntime
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    return session.run(None, {'inputs': inputs.numpy()})


def check_parity(graph, path, inputs, tolerance=TOLERANCE):
    """The largest absolute difference between the ONNX file ``path`` in onnxruntime and
    ``graph`` in PyTorch on ``inputs``, and the outputs' shapes; :class:`ParityError` when the
    shapes differ or the difference is above ``tolerance``."""
    with torch.no_grad():
        expected = graph(inputs)
    expected = [expected] if torch.is_tensor(expected) else list(expected)
    if not all(bool(torch.isfinite(e).all()) for e in expected):
        raise ParityError(f'PyTorch\'s own outputs of the student hold NaN or Inf on the parity '
                          f'batch of {len(inputs)}: the weights or the input compute them, not '
                          f'an operator of the graph; do not deploy {path}.')
    got = run_onnx(path, inputs)
    shapes = [tuple(g.shape) for g in got]
    if shapes != [tuple(e.shape) for e in expected]:
        raise ParityError(f'ONNX output shapes {shapes} differ from PyTorch\'s '
                          f'{[tuple(e.shape) for e in expected]} on a batch of {len(inputs)}')
    diff = max(float((torch.from_numpy(g) - e).abs().max()) for g, e in zip(got, expected))
    if not diff <= tolerance:
        raise ParityError(f'ONNX parity failed: {diff:.3g} > {tolerance:g}: onnxruntime computes '
                          f'something else than PyTorch on {path} (an operator exported '
                          'differently); do not deploy it.')
    return diff, shapes


def export_onnx(cfg, weights, path, input_shape=None, image=None, tolerance=TOLERANCE):
    """Export the student (``weights`` from :func:`export_student`) of ``cfg`` (a loaded config)
    to ONNX at ``path`` and check it against PyTorch (:func:`check_parity`); returns an
    :class:`OnnxReport`.

    ``input_shape``: the graph's ``(H, W)``, two positive integers (default: the first validation
    image's size, see the module docstring); ``image``: a path of an image file for the parity
    check instead of the first validation batch, resized to ``(H, W)``: it does not set the
    graph's size (docs/deploy.md).
    """
    check_input_shape(input_shape)
    model = build_student(cfg, weights)
    if input_shape:
        size, size_from = tuple(input_shape), '--input-shape'
    else:
        size = default_size(cfg, model, first_val_images(cfg, limit=1)[0])
        size_from = 'the first validation image (--input-shape H W to change)'
    images = [read_image(image, cfg)] if image else first_val_images(cfg)
    graph, names = graph_of(cfg, model, size)
    graph.eval()
    inputs = batch_of(images, size)
    write_onnx(graph, inputs[:1].expand(2, -1, -1, -1).contiguous(), path, names)
    diff, shapes = check_parity(graph, path, inputs, tolerance)
    return OnnxReport(path, size, names, shapes, diff, tolerance, size_from=size_from)
