"""Safe checkpoint loading: weights_only everywhere, clear errors, strict key matching."""
import collections
import re

import pytest
import torch
from helpers import TinyCNN

from kdzoo.checkpoint import (
    CheckpointError,
    load_file,
    load_weights,
    state_dict_of,
    strip_prefix,
)
from kdzoo.patches import harden_mmengine_loading


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
    refused = 'refused by torch.load\\(weights_only=True\\).*unsafe_load=True'
    with pytest.raises(CheckpointError, match=refused) as err:
        load_file(str(path))
    # the global it would run is named (torch's first line only said to re-run unsafely)
    assert f'plain containers ({Evil.__module__}.Evil)' in str(err.value)
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
    with pytest.warns(UserWarning, match=re.escape(
            f'checkpoint {path} fills 13 of the 16 tensors of TinyCNN (81%) (strict=False); not '
            'loaded: missing keys (1): layer1.0.bias; unexpected keys (1): extra.weight; '
            'mismatched keys (2): fc.bias (7,) vs model (5,), fc.weight (7, 16) vs model (5, 16)')):
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


def test_empty_file_says_it_is_empty(tmp_path):
    path = tmp_path / 'empty.pth'
    path.write_bytes(b'')
    with pytest.raises(CheckpointError, match='^' + re.escape(
            f'checkpoint {path} is empty (0 bytes): its download or save was interrupted. '
            'Download or save it again.') + '$'):
        load_file(str(path))


class Other(torch.nn.Module):
    """Another architecture: no key in common with TinyCNN."""

    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Linear(3, 4)


@pytest.mark.parametrize('weights, loaded', [({}, 0), (Other().state_dict(), 0),
                                             ('half', 7)], ids=['empty', 'other', 'under-half'])
def test_not_strict_refuses_a_checkpoint_that_fills_under_half(tmp_path, weights, loaded):
    if weights == 'half':  # layer1 only: 7 of TinyCNN's 16 tensors
        weights = {k: v for k, v in TinyCNN().state_dict().items() if k.startswith('layer1')}
    path = tmp_path / 'wrong.pth'
    torch.save(weights, path)
    model = TinyCNN()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match='^' + re.escape(
            f'checkpoint {path} fills {loaded} of the 16 tensors of TinyCNN '
            f'({loaded / 16:.0%}), under the 50% that strict=False accepts: it is not a checkpoint '
            'of this model (missing keys (')):
        load_weights(model, str(path), strict=False)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # nothing loaded


@pytest.mark.parametrize('strict', [True, False])
def test_nan_weights_are_refused_naming_the_file(tmp_path, strict):
    weights = TinyCNN().state_dict()
    weights['fc.bias'][2] = float('nan')
    path = tmp_path / 'nan.pth'
    torch.save(weights, path)
    with pytest.raises(CheckpointError, match='^' + re.escape(
            f'checkpoint {path} holds non-finite values (NaN or Inf) in 1 tensors: fc.bias; the '
            'model would compute NaN.')):
        load_weights(TinyCNN(), str(path), strict=strict)


def test_an_inf_batch_norm_statistic_is_refused_and_an_inf_mask_buffer_kept():
    from kdzoo.checkpoint import nonfinite_keys
    model = TinyCNN()
    weights = model.state_dict()
    weights['layer1.1.running_var'][0] = float('inf')  # passed export, test and analyze
    assert nonfinite_keys(model, weights) == ['layer1.1.running_var']
    model.register_buffer('mask', torch.tensor([0.0, float('-inf')]))  # an attention mask
    assert nonfinite_keys(model, dict(model.state_dict(), **{
        'layer1.1.running_var': torch.ones(1)})) == []
