"""Write a student-only checkpoint from a training checkpoint.

    python tools/export_student.py CONFIG CKPT OUT

Classification: OUT is a plain state dict that loads with
``timm.create_model(name, num_classes=K).load_state_dict(torch.load(OUT))``.
mmdet / mmseg: OUT is ``{'state_dict': ..., 'meta': ...}`` for the config's plain student model
(``mmdet.apis.init_detector`` / ``mmseg.apis.init_model``). The teacher and connectors are dropped.
"""
import argparse
import os

import torch

import kdzoo  # noqa: F401
from kdzoo.checkpoint import load_file, state_dict_of
from kdzoo.runner import load_config


def export(config, checkpoint, out):
    from kdzoo.adapters import student_state_dict, task_of
    cfg = load_config(config)
    loaded = load_file(checkpoint)
    weights = student_state_dict(cfg, state_dict_of(loaded))
    meta = {'exported_by': 'kdzoo'}
    if isinstance(loaded.get('meta'), dict) and 'dataset_meta' in loaded['meta']:
        meta['dataset_meta'] = loaded['meta']['dataset_meta']  # class names for init_model
    payload = weights if task_of(cfg) == 'cls' else {'state_dict': weights, 'meta': meta}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    torch.save(payload, out)
    return weights


def main(argv=None):
    parser = argparse.ArgumentParser(description='Export the student of a kdzoo checkpoint.')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('out')
    args = parser.parse_args(argv)
    weights = export(args.config, args.checkpoint, args.out)
    print(f'wrote {args.out}: {len(weights)} tensors of the student')


if __name__ == '__main__':
    main()
