"""Write a student-only checkpoint from a training checkpoint, and optionally an ONNX graph of it
checked against PyTorch (the logic: kdzoo/export.py; the contract: docs/deploy.md).

    kdzoo export CONFIG CKPT OUT [--onnx OUT.onnx] [--input-shape H W]
                 [--image PATH] [--tolerance T] [--cfg-options k=v ...]
                 [--ignore-class-names]

(``python tools/export_student.py`` in a checkout is the same command.)

Classification: OUT is a plain state dict that loads with
``timm.create_model(name, num_classes=K).load_state_dict(torch.load(OUT))``.
mmdet / mmseg: OUT is ``{'state_dict': ..., 'meta': ...}`` for the config's plain student model
(``mmdet.apis.init_detector`` / ``mmseg.apis.init_model``). The teacher and connectors are dropped.
``--onnx``: the student as an ONNX graph (opset 18, dynamic batch, float32 0-255 NCHW input with the
normalisation inside), then onnxruntime's outputs on the first validation batch (or ``--image``)
against PyTorch's: the max abs difference is printed, and above ``--tolerance`` the command fails.

Nothing is written when OUT or ``--onnx`` is CKPT itself, or ``--onnx`` is OUT; when CKPT is not
the config's student (keys, shapes) or holds NaN / Inf; when the class names CKPT records are not
the validation data's (``--ignore-class-names`` skips that check); or when ``--input-shape`` is
not two positive integers (kdzoo/export.py, docs/deploy.md).
"""
import argparse
import os
import sys

import kdzoo  # noqa: F401
from kdzoo.experiments.arguments import config_name
from kdzoo.export import TOLERANCE, ExportError, ParityError, check_input_shape, export_onnx
from kdzoo.export import export_student as export
from kdzoo.runner import load_config


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(prog='kdzoo export',
                                     description='Export the student of a kdzoo checkpoint.')
    parser.add_argument('config', type=config_name)
    parser.add_argument('checkpoint', help='a checkpoint written by kdzoo train')
    parser.add_argument('out', help='the student-only checkpoint to write')
    parser.add_argument('--onnx', metavar='OUT.onnx', help='also write the student as ONNX and '
                        'check it against PyTorch with onnxruntime')
    parser.add_argument('--input-shape', nargs=2, type=int, metavar=('H', 'W'),
                        help='the graph\'s input height and width (default: the first '
                        'validation image\'s size)')
    parser.add_argument('--image', help='an image file for the parity check (default: the first '
                        'validation batch), resized to the graph\'s input size: it does not set '
                        'that size')
    parser.add_argument('--tolerance', type=float, default=TOLERANCE,
                        help=f'largest allowed max abs difference (default {TOLERANCE:g})')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys, e.g. the validation data\'s root')
    parser.add_argument('--ignore-class-names', action='store_true',
                        help='export even when the class names CKPT records are not the '
                        'validation data\'s (another set or order)')
    args = parser.parse_args(argv)
    try:
        check_input_shape(args.input_shape)
    except ExportError as err:
        parser.error(str(err))
    if args.image and not os.path.isfile(args.image):
        parser.error(f'--image {args.image}: no such file')
    if args.image and not args.onnx:
        parser.error('--image is the ONNX parity check\'s image: give --onnx OUT.onnx too')
    if not args.tolerance >= 0:  # NaN too
        parser.error(f'--tolerance {args.tolerance}: give a difference >= 0 (default '
                     f'{TOLERANCE:g})')
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        weights = export(args.config, args.checkpoint, args.out, args.cfg_options, args.onnx,
                         args.ignore_class_names)
    except ExportError as err:
        sys.exit(str(err))
    print(f'wrote {args.out}: {len(weights)} tensors of the student')
    if not args.onnx:
        return None
    try:
        report = export_onnx(load_config(args.config, args.cfg_options), weights, args.onnx,
                             args.input_shape, args.image, args.tolerance)
    except ParityError as err:
        sys.exit(f'export_student: {err}')
    except ExportError as err:
        sys.exit(str(err))
    print('\n'.join(report.lines()))
    return report
