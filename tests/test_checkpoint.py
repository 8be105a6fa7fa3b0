"""Safe checkpoint loading: weights_only everywhere, clear errors, strict key matching."""
import collections
import os

import pytest
import torch

from helpers import TinyCNN
from kdzoo.checkpoint import (CheckpointError, harden_mmengine_loading, load_file, load_weights,
                              state_dict_of, strip_prefix)


class Evil:
    """An arbitrary class: weights_only unpickling must refuse it."""


def test_loads_plain_mmengine_and_ddp_layouts(tmp_path):
    src = TinyCNN()
    for i, wrap in enumerate([lambda sd: sd, lambda sd: {'state_dict': sd, 'meta': {'epoch': 3}},
                              lambda sd: {'model': {'module.' + k: v for k, v in sd.items()}}]):
        path = tmp_path / f'c{i}.pth'
        torch.save(wrap(src.state_dict()), path)
        dst = TinyCNN()
        report = load_weights(dst, str(path))
        assert report == {'missing': [], 'unexpected': [], 'mismatched': []}
        assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(),
                                                       dst.state_dict().values()))


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(CheckpointError, match=f'checkpoint not found: {tmp_path}/none.pth'):
        load_file(str(tmp_path / 'none.pth'))


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / 't.pth'
    torch.save(TinyCNN().state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match='truncated or not a PyTorch checkpoint'):
        load_file(str(path))


def test_pickle_refused_by_weights_only_and_unsafe_opt_in(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': TinyCNN().state_dict(), 'extra': Evil()}, path)
    with pytest.raises(CheckpointError, match='refused by torch.load\\(weights_only=True\\).*unsafe_load=True'):
        load_file(str(path))
    assert isinstance(load_file(str(path), unsafe_load=True)['extra'], Evil)


def test_mismatched_keys_are_listed_and_refused_unless_not_strict(tmp_path):
    path = tmp_path / 'wide.pth'
    sd = TinyCNN(num_classes=7).state_dict()
    sd['extra.weight'] = torch.zeros(1)
    del sd['layer1.0.bias']
    torch.save(sd, path)
    model = TinyCNN(num_classes=5)
    with pytest.raises(CheckpointError) as err:
        load_weights(model, str(path))
    msg = str(err.value)
    assert 'missing keys (1): layer1.0.bias' in msg and 'unexpected keys (1): extra.weight' in msg
    assert 'fc.weight (7, 16) vs model (5, 16)' in msg and 'strict=False' in msg
    before = model.fc.weight.clone()
    report = load_weights(model, str(path), strict=False)
    assert report['missing'] == ['layer1.0.bias'] and report['unexpected'] == ['extra.weight']
    assert torch.equal(model.fc.weight, before)
    assert torch.equal(model.layer1[0].weight, sd['layer1.0.weight'])


def test_unreachable_url_says_to_pass_a_local_path():
    with pytest.raises(CheckpointError, match='pass the local file path'):
        load_file('http://127.0.0.1:9/teacher.pth')


def test_state_dict_of_rejects_non_dicts():
    with pytest.raises(CheckpointError, match='dict of tensors'):
        state_dict_of([1, 2])
    assert strip_prefix(collections.OrderedDict({'a.x': 1, 'b.y': 2}), 'a.') == {'x': 1}


def test_mmengine_resume_loading_is_weights_only_with_allowlist(tmp_path):
    """An MMEngine-style checkpoint (HistoryBuffer, numpy in message_hub) loads through MMEngine's
    own loader after hardening; an arbitrary pickle is refused instead of silently unpickled."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import _load_checkpoint
    harden_mmengine_loading()
    ok = tmp_path / 'iter_2.pth'
    history = HistoryBuffer()
    history.update(np.float64(1.5))
    from mmengine.optim.scheduler.param_scheduler import OneCycleParamScheduler
    torch.save({'state_dict': TinyCNN().state_dict(),
                'param_schedulers': [{'anneal_func': OneCycleParamScheduler._annealing_cos}],
                'message_hub': {'log_scalars': {'loss': history}},
                'meta': {'iter': 2, 'seed': np.int64(3)}}, ok)
    loaded = _load_checkpoint(str(ok), map_location='cpu')
    assert loaded['meta']['iter'] == 2
    assert isinstance(loaded['message_hub']['log_scalars']['loss'], HistoryBuffer)
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': Evil()}, evil)
    with pytest.raises(CheckpointError, match='refused'):
        _load_checkpoint(str(evil), map_location='cpu')
