"""Loss recipes of the plug-and-play matrix, read from the shipped configs.

A recipe is the ``distill_cfg.losses`` / ``connectors`` of one of kdzoo's configs (the settings
a user gets from ``configs/``), fitted to another pair of models:

- a ``Projector`` gets the student stage's and the teacher stage's widths of the item using it;
- a ``StageBranch`` (OFA) or the branches of an ``MSDFusion`` (MLDR-KD) get the student stages'
  widths, strides that bring every stage to the last stage's grid, one ``embed_dim`` (the larger
  of the student's and the teacher's last widths, the shared gate's) and the pair's classes;
- an item's ``warmup_iters`` becomes 10 % of the run's iterations (the shipped configs ramp the
  weight over a fixed fraction of their own, much longer, schedules).

Every other setting (loss type and arguments, weights, taps, names) is the config's.
"""
import copy

from mmengine.config import Config

from kdzoo.tasks import STAGES


def stage_index(tap):
    return STAGES.index(tap) if tap in STAGES else None


def branch_cfg(cfg, p, index, embed_dim):
    """A stage branch config fitted to student stage ``index`` of the probed pair ``p``."""
    channels, height, _ = p.student[index]
    last = p.student[-1][1]
    return dict(cfg, in_channels=channels, stride=max(1, height // last), embed_dim=embed_dim,
                num_classes=p.num_classes)


def fit_connectors(losses, connectors, p):
    """Connector configs fitted to the pair ``p`` (see the module docstring)."""
    fitted = copy.deepcopy(connectors)
    embed_dim = max(p.student[-1][0], p.teacher[-1][0]) if p.student and p.teacher else None
    for item in losses:
        name = item.get('connector')
        if not name:
            continue
        cfg = fitted[name.split('.')[0]]
        student = [item['student']] if isinstance(item['student'], str) else item['student']
        s_index, t_index = stage_index(student[0]), stage_index(item['teacher'])
        kind = cfg.get('type')
        if kind == 'Projector' and s_index is not None:
            cfg['in_channels'] = p.student[s_index][0]
            if t_index is not None:
                cfg['out_channels'] = p.teacher[t_index][0]
        elif kind == 'StageBranch' and s_index is not None:
            fitted[name] = branch_cfg(cfg, p, s_index, embed_dim)
        elif kind == 'MSDFusion' and '.' not in name:
            template = dict(cfg['branches'][0])
            template.pop('type', None)
            cfg['branches'] = [branch_cfg(template, p, i, embed_dim)
                               for i in range(len(student))]
            cfg['num_classes'] = p.num_classes
    return fitted


def recipe(config, p):
    """``dict(losses=[...], connectors={...})`` of ``config``'s ``distill_cfg``, fitted to ``p``
    (``p.student`` / ``p.teacher``: ``(C, H, W)`` of stage1..; ``p.num_classes``; ``p.iters``)."""
    distill_cfg = Config.fromfile(config).distill_cfg.to_dict()
    losses = copy.deepcopy(distill_cfg['losses'])
    for item in losses:
        if item.get('warmup_iters'):
            item['warmup_iters'] = max(1, p.iters // 10)
    connectors = fit_connectors(losses, distill_cfg.get('connectors') or {}, p)
    return dict(losses=losses, connectors=connectors) if connectors else dict(losses=losses)
