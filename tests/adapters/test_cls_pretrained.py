"""TimmClassifier(pretrained=True): timm's published weights through timm, a local copy with
pretrained_file=, and a fast, explicit failure without network (never a random model)."""
import json
import os
import subprocess
import sys

import pytest
import timm
import torch

from kdzoo.adapters.cls import TimmClassifier

# timm's test_resnet publishes timm/test_resnet.r160_in1k (1000 classes, mean = std = 0.5)
NAME, HUB_ID = 'test_resnet', 'timm/test_resnet.r160_in1k'

BUILD = '''
import json, sys, time, warnings
warnings.filterwarnings('ignore')
from kdzoo.adapters.cls import TimmClassifier
start = time.time()
try:
    TimmClassifier(sys.argv[1], num_classes=10, pretrained=True)
    error = None
except Exception as err:
    error = f'{type(err).__name__}: {err}'
print(json.dumps(dict(seconds=time.time() - start, error=error)))
'''


def build_in_fresh_process(tmp_path, **env):
    """Build in a new Python process whose Hugging Face / torch caches are empty folders."""
    env = dict(os.environ, HF_HOME=str(tmp_path / 'hf'), TORCH_HOME=str(tmp_path / 'torch'),
               **env)
    done = subprocess.run([sys.executable, '-c', BUILD, 'resnet18'], env=env,
                          capture_output=True, text=True, timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('env', [
    dict(HF_HUB_OFFLINE='1'),
    # no network: a Hub endpoint where nothing listens (connection refused at once)
    dict(HF_HUB_OFFLINE='0', HF_ENDPOINT='http://127.0.0.1:9'),
], ids=['HF_HUB_OFFLINE', 'unreachable'])
def test_no_network_fails_at_build_within_seconds_naming_model_cache_and_local_file(tmp_path, env):
    result = build_in_fresh_process(tmp_path, **env)
    assert result['seconds'] < 5, result  # timm alone retries for ~45 s offline
    error = result['error']
    assert error and error.startswith('RuntimeError'), result
    assert "'resnet18'" in error and 'timm/resnet18.a1_in1k' in error
    assert str(tmp_path / 'hf' / 'hub') in error  # the cache it looked in
    assert 'pretrained_file=' in error and 'never falls back to random weights' in error


def published_weights(num_classes=1000, seed=0):
    torch.manual_seed(seed)
    return timm.create_model(NAME, num_classes=num_classes).state_dict()


def assert_loaded(model, state_dict, skip=()):
    own = model.model.state_dict()
    for key, value in state_dict.items():
        if not key.startswith(skip):
            assert torch.equal(own[key], value), key


@pytest.mark.parametrize('suffix', ['.pth', '.safetensors'])
def test_pretrained_file_loads_through_timm_and_replaces_another_head(tmp_path, suffix):
    weights = published_weights()
    path = str(tmp_path / f'weights{suffix}')
    if suffix == '.pth':
        torch.save(weights, path)
    else:
        from safetensors.torch import save_file
        save_file(weights, path)
    same = TimmClassifier(NAME, num_classes=1000, pretrained_file=path)
    assert_loaded(same, weights)
    other = TimmClassifier(NAME, num_classes=5, pretrained_file=path)
    assert other.model.fc.weight.shape == (5, weights['fc.weight'].shape[1])
    assert_loaded(other, weights, skip=('fc.',))  # timm re-initialises a head of 5 classes
    # normalised as the published weights (timm's pretrained_cfg: mean = std = 0.5)
    torch.testing.assert_close(other.mean.flatten(), torch.full((3,), 127.5))
    torch.testing.assert_close(other.std.flatten(), torch.full((3,), 127.5))


def test_loaded_weights_survive_mmengine_init_weights(tmp_path):
    weights = published_weights()
    torch.save(weights, tmp_path / 'w.pth')
    model = TimmClassifier(NAME, num_classes=5, pretrained_file=str(tmp_path / 'w.pth'))
    model.init_weights()  # what the runner / the teacher build call: timm's init would reset
    assert_loaded(model, weights, skip=('fc.',))
    random = TimmClassifier(NAME, num_classes=5)
    before = random.model.conv1[0].weight.clone()
    random.init_weights()
    assert not torch.equal(before, random.model.conv1[0].weight)  # unchanged: still re-inits


def test_cached_copy_loads_without_any_network(tmp_path, monkeypatch):
    """A copy in the Hugging Face cache (as a first online build leaves it) is loaded offline."""
    from huggingface_hub import constants
    from safetensors.torch import save_file
    weights = published_weights(seed=3)
    repo = tmp_path / 'hub' / ('models--' + HUB_ID.replace('/', '--'))
    (repo / 'refs').mkdir(parents=True)
    (repo / 'refs' / 'main').write_text('0123abcd')
    (repo / 'snapshots' / '0123abcd').mkdir(parents=True)
    save_file(weights, str(repo / 'snapshots' / '0123abcd' / 'model.safetensors'))
    monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(tmp_path / 'hub'))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    model = TimmClassifier(NAME, num_classes=1000, pretrained=True)
    assert_loaded(model, weights)


def test_default_is_random_init_with_imagenet_normalisation():
    a, b = TimmClassifier(NAME, num_classes=5), TimmClassifier(NAME, num_classes=5)
    assert not torch.equal(a.model.conv1[0].weight, b.model.conv1[0].weight)
    torch.testing.assert_close(a.mean.flatten(), torch.tensor([123.675, 116.28, 103.53]))


def test_missing_pretrained_file_and_unknown_tag(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"pretrained_file '.*nope.pth' of 'test_resnet'"):
        TimmClassifier(NAME, num_classes=5, pretrained_file=str(tmp_path / 'nope.pth'))
    with pytest.raises(ValueError, match=r'Invalid pretrained tag \(bogus\) for test_resnet'):
        TimmClassifier('test_resnet.bogus', num_classes=5, pretrained=True)
