"""Safe checkpoint loading and student-only export.

Every checkpoint kdzoo reads goes through ``torch.load(weights_only=True)``: tensors, containers
and an explicit allow-list of the plain types MMEngine's own training checkpoints hold
(``HistoryBuffer``, numpy arrays/scalars). Nothing falls back to unrestricted unpickling unless
the user sets ``unsafe_load=True`` for a file they trust. :func:`weights_only_torch_load` is that
rule for MMEngine's ``--resume`` / ``load_from`` (:func:`kdzoo.patches.harden_mmengine_loading`
puts it in place of the fork's loader, which silently falls back to ``weights_only=False``).

:func:`apply_weights` puts weights into a model: nothing is silent there either. An empty file, NaN
weights, keys that do not match (``strict=True``) are errors naming the file; ``strict=False``
warns with what did not load and refuses a checkpoint filling under half of the model.
"""
import os
import pickle
import re
import urllib.error
import warnings

import torch


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, refused by ``weights_only``, or does not fit the
    model."""


def safe_globals():
    """The allow-list for MMEngine training checkpoints: MMEngine's own list (``HistoryBuffer``,
    numpy arrays/scalars in ``message_hub`` / ``meta``) plus ``OneCycleParamScheduler``, whose
    saved state names its annealing function (``OneCycleParamScheduler._annealing_cos``)."""
    from mmengine.optim.scheduler.param_scheduler import OneCycleParamScheduler
    from mmengine.runner.checkpoint import get_torch_safe_globals
    return get_torch_safe_globals() + [OneCycleParamScheduler]


def _refused(source, err):
    text = str(err).strip()
    found = re.search(r'Unsupported global: GLOBAL (\S+)', text)
    what = (f'{found.group(1)}' if found else
            text.splitlines()[0] if text else type(err).__name__)
    return CheckpointError(
        f'checkpoint {source} was refused by torch.load(weights_only=True): it pickles objects '
        f'other than tensors and plain containers ({what}). If you trust this file, a teacher '
        "takes unsafe_load=True (teacher=dict(..., unsafe_load=True)); for any use, better, "
        're-save its state_dict where it loads: torch.save(model.state_dict(), path).')


def load_file(source, map_location='cpu', unsafe_load=False):
    """Load a checkpoint from a local path or an http(s) URL; clear errors for every failure."""
    if str(source).startswith(('http://', 'https://')):
        try:
            with torch.serialization.safe_globals(safe_globals()):
                return torch.hub.load_state_dict_from_url(
                    source, map_location=map_location, weights_only=not unsafe_load)
        except (urllib.error.URLError, OSError) as err:
            raise CheckpointError(
                f'could not download checkpoint {source} ({err}). Without network access, '
                'download it elsewhere and pass the local file path instead of the URL.') from err
        except pickle.UnpicklingError as err:
            raise _refused(source, err) from err
    path = os.path.expanduser(str(source))
    if not os.path.isfile(path):
        raise CheckpointError(f'checkpoint not found: {path} (cwd: {os.getcwd()})')
    if os.path.getsize(path) == 0:
        raise CheckpointError(f'checkpoint {path} is empty (0 bytes): its download or save was '
                              'interrupted. Download or save it again.')
    try:
        with torch.serialization.safe_globals(safe_globals()):
            return torch.load(path, map_location=map_location, weights_only=not unsafe_load)
    except pickle.UnpicklingError as err:
        raise _refused(path, err) from err
    except (RuntimeError, EOFError, ValueError, OSError) as err:
        raise CheckpointError(
            f'could not read checkpoint {path}: {str(err) or type(err).__name__}. The file is '
            'truncated or not a PyTorch checkpoint.') from err


def state_dict_of(checkpoint):
    """The model weights inside a loaded checkpoint (``state_dict`` / ``model`` key or the dict
    itself), with a DDP ``module.`` prefix removed."""
    if not isinstance(checkpoint, dict):
        raise CheckpointError('a checkpoint must hold a dict of tensors, got '
                              f'{type(checkpoint).__name__}')
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    if checkpoint and all(k.startswith('module.') for k in checkpoint):
        checkpoint = {k[len('module.'):]: v for k, v in checkpoint.items()}
    return checkpoint


def listing(keys, limit=10):
    """The first ``limit`` of ``keys``, sorted and comma-separated, then how many more."""
    keys = sorted(keys)
    more = f' ... and {len(keys) - limit} more' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def load_weights(model, source, strict=True, unsafe_load=False):
    """Load the checkpoint at ``source`` into ``model`` (see :func:`apply_weights`)."""
    weights = state_dict_of(load_file(source, unsafe_load=unsafe_load))
    return apply_weights(model, weights, source, strict)


def compare_keys(own, weights):
    """``{'missing': [...], 'unexpected': [...], 'mismatched': ['key (ckpt shape) vs model
    (shape)', ...]}`` of a checkpoint's ``weights`` against a model's state dict ``own``."""
    return {
        'missing': [k for k in own if k not in weights],
        'unexpected': [k for k in weights if k not in own],
        'mismatched': [f'{k} {tuple(weights[k].shape)} vs model {tuple(own[k].shape)}'
                       for k in own if k in weights and hasattr(weights[k], 'shape')
                       and weights[k].shape != own[k].shape]}


def describe_fit(own, weights):
    """``(filled, problems)``: how many tensors of a model's state dict ``own`` the checkpoint's
    ``weights`` fill (same key, same shape), and the :func:`compare_keys` differences in words
    (``''`` when there are none)."""
    report = compare_keys(own, weights)
    bad = {k.split(' ')[0] for k in report['mismatched']}
    filled = sum(1 for k in own if k in weights and k not in bad)
    problems = '; '.join(f'{name} keys ({len(keys)}): {listing(keys)}'
                         for name, keys in report.items() if keys)
    return filled, problems


# buffers that are statistics (batch norm's), where an Inf is as wrong as in a parameter
STATISTICS = ('running_mean', 'running_var')


def nonfinite_keys(model, weights):
    """Keys of ``weights`` holding a NaN, or an Inf in a parameter or a normalisation statistic
    (another buffer may hold a ``-inf`` attention mask on purpose)."""
    params = {name for name, _ in model.named_parameters()}
    return [k for k, v in weights.items()
            if torch.is_tensor(v) and v.is_floating_point()
            and (bool(torch.isnan(v).any())
                 or ((k in params or k.endswith(STATISTICS)) and bool(torch.isinf(v).any())))]


def apply_weights(model, weights, source, strict=True):
    """Load the state dict ``weights`` (read from ``source``, named in errors) into ``model``.

    With ``strict=True`` (the default) missing keys, unexpected keys and shape mismatches are
    listed and refused; with ``strict=False`` the matching tensors are loaded, what did not load is
    listed in a warning, and a checkpoint that fills less than ``MIN_LOADED`` of the model's
    tensors is refused (another architecture's, or an empty one). NaN / Inf weights are refused
    either way. Returns ``{'missing': [...], 'unexpected': [...], 'mismatched': [...]}``.
    """
    own = model.state_dict()
    report = compare_keys(own, weights)
    _, problems = describe_fit(own, weights)
    if strict and problems:
        raise CheckpointError(
            f'checkpoint {source} does not match {type(model).__name__}: {problems}. Check the '
            'config that builds the model (and cfg_options such as num_classes); set '
            'strict=False to load the matching tensors anyway.')
    bad = {k.split(' ')[0] for k in report['mismatched']}
    loadable = {k: v for k, v in weights.items() if k in own and k not in bad}
    nonfinite = nonfinite_keys(model, loadable)
    if nonfinite:
        raise CheckpointError(
            f'checkpoint {source} holds non-finite values (NaN or Inf) in {len(nonfinite)} '
            f'tensors: {listing(nonfinite)}; the model would compute NaN. Use a checkpoint '
            'saved before the training that wrote it diverged.')
    if problems:
        check_loaded_fraction(model, source, len(loadable), len(own), problems)
    model.load_state_dict(loadable, strict=False)
    return report


MIN_LOADED = 0.5  # strict=False refuses a checkpoint that fills less of the model than this


def check_loaded_fraction(model, source, loaded, total, problems):
    """``strict=False``: refuse a checkpoint that fills under ``MIN_LOADED`` of the model's
    tensors; otherwise warn with what did not load."""
    summary = (f'checkpoint {source} fills {loaded} of the {total} tensors of '
               f'{type(model).__name__} ({loaded / max(total, 1):.0%})')
    if loaded < MIN_LOADED * total:
        raise CheckpointError(
            f'{summary}, under the {MIN_LOADED:.0%} that strict=False accepts: it is not a '
            f'checkpoint of this model ({problems}). Check the checkpoint path and the config '
            'that builds the model.')
    warnings.warn(f'{summary} (strict=False); not loaded: {problems}')


def strip_prefix(state_dict, prefix):
    """Keep only keys under ``prefix`` and remove it (e.g. the student inside a distiller)."""
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def weights_only_torch_load(file, map_location=None, weights_only=None):
    """MMEngine's ``_safe_torch_load`` signature with kdzoo's rule: ``weights_only=True`` and
    :func:`safe_globals` unless the caller passes ``weights_only=False``; a refused pickle is a
    :class:`CheckpointError` naming the file."""
    if weights_only is False:
        return torch.load(file, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(safe_globals()):
            return torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise _refused(getattr(file, 'name', file), err) from err
