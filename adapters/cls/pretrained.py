"""timm's published weights for :class:`kdzoo.adapters.cls.TimmClassifier` (``pretrained=True`` /
``pretrained_file=``): the ``timm.create_model`` arguments that load them from a local file or the
cache without network, or after one short probe that the download can work
(:func:`pretrained_kwargs`), and the normalisation they were trained with."""
import os

import torch

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
PROBE_TIMEOUT = 3.0  # seconds: one request, no retry, before a download is attempted


def published_cfg(model_name):
    """timm's pretrained config of ``model_name`` (default tag unless ``name.tag``) as a dict."""
    from timm.models import get_pretrained_cfg
    try:
        cfg = get_pretrained_cfg(model_name)
    except RuntimeError as err:  # a tag that does not exist
        raise ValueError(f'TimmClassifier: {err} (timm.list_pretrained({model_name.split(".")[0]!r}'
                         '+ ".*") lists the published tags)') from None
    cfg = cfg.to_dict() if cfg is not None else {}
    if not cfg.get('hf_hub_id') and not cfg.get('url'):
        raise ValueError(f'TimmClassifier: timm publishes no weights for {model_name!r}; use '
                         'pretrained=False, or pretrained_file= for your own copy')
    return cfg


def hf_filenames(cfg):
    """The files timm tries on the Hugging Face Hub, in its order (safetensors first)."""
    name = cfg.get('hf_hub_filename')
    return [name] if name else ['model.safetensors', 'pytorch_model.bin']


def hf_offline():
    """``HF_HUB_OFFLINE`` as huggingface_hub reads it, or as set since it was imported."""
    from huggingface_hub import constants
    env = os.environ.get('HF_HUB_OFFLINE', '').strip().upper()
    return bool(constants.HF_HUB_OFFLINE) or env in ('1', 'ON', 'YES', 'TRUE')


def cached_weights(cfg):
    """``(path of a cached copy or None, cache folder, remote location)`` of the published
    weights: the Hugging Face cache for hub weights, torch hub's ``checkpoints/`` for URLs."""
    if cfg.get('hf_hub_id'):
        from huggingface_hub import constants, try_to_load_from_cache
        repo_id, _, revision = cfg['hf_hub_id'].partition('@')
        for filename in hf_filenames(cfg):
            path = try_to_load_from_cache(repo_id, filename, revision=revision or None)
            if isinstance(path, str):
                return path, constants.HF_HUB_CACHE, f'{repo_id}/{filename} (Hugging Face Hub)'
        return None, constants.HF_HUB_CACHE, f'{repo_id} (Hugging Face Hub)'
    folder = os.path.join(torch.hub.get_dir(), 'checkpoints')
    path = os.path.join(folder, os.path.basename(cfg['url'].split('?')[0]))
    return (path if os.path.isfile(path) else None), folder, cfg['url']


def probe(cfg):
    """One request (``PROBE_TIMEOUT`` s, no retry) to where the weights are published; raises
    the error of that request."""
    if cfg.get('hf_hub_id'):
        if hf_offline():
            raise ConnectionError('HF_HUB_OFFLINE is set')
        from huggingface_hub import get_hf_file_metadata, hf_hub_url
        repo_id, _, revision = cfg['hf_hub_id'].partition('@')
        get_hf_file_metadata(hf_hub_url(repo_id, hf_filenames(cfg)[-1], revision=revision or None),
                             timeout=PROBE_TIMEOUT)
    else:
        import urllib.request
        request = urllib.request.Request(cfg['url'], method='HEAD')
        urllib.request.urlopen(request, timeout=PROBE_TIMEOUT).close()


def unreachable(model_name, cache, remote, cause):
    return RuntimeError(
        f'TimmClassifier: cannot load the published weights of {model_name!r} ({remote}): they are '
        f'not in the cache {cache} and the download failed ({type(cause).__name__}: {cause}). '
        f'Either download them once where there is network (python -c "import timm; '
        f"timm.create_model('{model_name}', pretrained=True)\") and copy the cache here "
        '(HF_HOME / TORCH_HOME set where it lives), or give the weights file itself: '
        f"TimmClassifier(model_name='{model_name}', pretrained_file='/path/to/model.safetensors' "
        "or '.pth'). pretrained=True never falls back to random weights.")


def pretrained_kwargs(model_name, pretrained, pretrained_file):
    """The ``timm.create_model`` arguments that load timm's published weights.

    A local file (``pretrained_file``, or a copy already in the cache) is loaded through timm's
    own ``pretrained_cfg_overlay=dict(file=...)``: no network at all. Otherwise one short request
    checks that the weights can be downloaded before timm downloads them, so that without network
    the build fails within seconds with an error naming the model, the cache and the local-file
    option (:func:`unreachable`), instead of timm's retries or a random teacher.
    """
    if pretrained_file is not None:
        if not os.path.isfile(pretrained_file):
            raise FileNotFoundError(
                f'TimmClassifier: pretrained_file {pretrained_file!r} of {model_name!r} not found')
        return dict(pretrained=True, pretrained_cfg_overlay=dict(file=str(pretrained_file)))
    if not pretrained:
        return dict(pretrained=False)
    cfg = published_cfg(model_name)
    path, cache, remote = cached_weights(cfg)
    if path is not None:
        return dict(pretrained=True, pretrained_cfg_overlay=dict(file=path))
    try:
        probe(cfg)
    except Exception as err:  # noqa: BLE001 - any failure means: not downloadable from here
        raise unreachable(model_name, cache, remote, err) from err
    return dict(pretrained=True)


def published_mean_std(model):
    """The published weights' normalisation in ``[0, 255]`` units (timm's pretrained_cfg)."""
    cfg = getattr(model, 'pretrained_cfg', None) or {}
    if 'mean' not in cfg or 'std' not in cfg:
        return IMAGENET_MEAN, IMAGENET_STD
    return tuple(255 * m for m in cfg['mean']), tuple(255 * s for s in cfg['std'])
