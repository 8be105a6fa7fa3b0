"""Short fingerprints of what produced a result: text, files, folders of data, tensors.

The one implementation used by the reuse rules of the experiments
(:mod:`kdzoo.experiments.fingerprint`) and by the teacher-output cache (:mod:`kdzoo.teacher_cache`).
"""
import hashlib
import os
import os.path as osp

import torch


def text_sha(text):
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha(path):
    """The sha256 of the file's bytes (16 hex digits); a URL, which cannot be read here, is
    hashed as its text (``url:`` first)."""
    if '://' in path:
        return 'url:' + text_sha(path)
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()[:16]


def folder_files(folder):
    """``[(relative path, size)]`` of every regular file under ``folder``, sorted (one
    ``os.scandir`` pass; a link is followed, an entry that is not a regular file has size -1)."""
    files, pending = [], ['']
    while pending:
        relative = pending.pop()
        with os.scandir(osp.join(folder, relative)) as entries:
            for entry in entries:
                name = osp.join(relative, entry.name)
                if entry.is_dir():
                    pending.append(name)
                else:
                    files.append((name, entry.stat().st_size if entry.is_file() else -1))
    return sorted(files)


def data_paths(cfg, loaders=('train_dataloader', 'val_dataloader')):
    """``[(config key, path, kind)]`` of the data the ``loaders`` read: ``root`` and
    ``data_root`` folders, ``ann_file`` files (relative to ``data_root``)."""
    paths = []
    for loader in loaders:
        pending = [(f'{loader}.dataset', (cfg.get(loader) or {}).get('dataset') or {})]
        while pending:
            key, dataset = pending.pop(0)
            if isinstance(dataset.get('dataset'), dict):  # wrappers (RepeatDataset, ...)
                pending.append((f'{key}.dataset', dataset['dataset']))
                continue
            if dataset.get('datasets'):  # ConcatDataset: every one
                pending += [(f'{key}.datasets.{i}', d) for i, d in enumerate(dataset['datasets'])]
                continue
            for name in ('root', 'data_root'):
                if dataset.get(name):
                    paths.append((f'{key}.{name}', dataset[name], 'folder'))
            if dataset.get('ann_file'):
                path = osp.join(dataset.get('data_root') or '', dataset['ann_file'])
                paths.append((f'{key}.ann_file', path, 'file'))
    return paths


def data_sha(paths):
    """A fingerprint of the data at ``paths`` (``[(config key, path, kind)]``, kind ``'folder'``
    or ``'file'``): a file's bytes; a folder's every file by relative path and size (reading
    every image would cost a pass over the data set; data written again with other contents
    changes sizes). A path that does not exist is hashed as missing."""
    digest = hashlib.sha256()
    for key, path, kind in sorted(paths):
        digest.update(f'{key}={path}\n'.encode())
        if kind == 'file' and osp.isfile(path):
            digest.update(file_sha(path).encode())
        elif kind == 'folder' and osp.isdir(path):
            for name, size in folder_files(path):
                digest.update(f'{name}:{size}\n'.encode())
        else:
            digest.update(b'missing\n')
    return digest.hexdigest()[:16]


def qualified_name(value):
    """``module.name`` of a class or function in a config (its repr would hold its address)."""
    return f'{getattr(value, "__module__", "")}.{getattr(value, "__qualname__", type(value))}'


def tensor_bytes(tensor):
    """The values of a tensor as bytes (C order, any strides; bfloat16 widened)."""
    tensor = tensor.detach().cpu()
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy().tobytes()


def state_sha(state_dict):
    """A short fingerprint of a state dict's names, shapes and values."""
    digest = hashlib.sha256()
    for key, value in state_dict.items():
        digest.update(key.encode())
        if torch.is_tensor(value):
            digest.update(str(tuple(value.shape)).encode())
            digest.update(tensor_bytes(value))
    return digest.hexdigest()[:16]
