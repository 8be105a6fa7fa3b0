# MLDR-KD's distill items (arXiv 2502.06189; release github.com/Ethan-Yang02/MLDR-KD,
# mldr_kd/distiller.py), shared by every classification MLDR-KD config: DFRA (tau 1, alpha 2) on
# the student's logits, on the logits of each stage branch, and on the MSDF fusion of the
# branches, each against the teacher's logits, all weights 1 (the release's defaults; CE with
# label smoothing 0.1 is the student's). The branches are the `msdf` connector's
# (`msdf.branches.<i>`), so the per-stage items and the fusion share them, and each branch runs
# once per step (StageBranch memoises its output for the stage tensor), as in the release.
# A config that uses these items defines `connectors.msdf` (an `MSDFusion`, branches with
# bias=False as the release's) for its own pair and sets `distill_cfg.losses` to
# {{_base_.mldrkd_losses}} (four-stage students: ResNet) or {{_base_.mldrkd_losses_3stages}}
# (three-stage students: EfficientViM; the release has ResNet students only).


def mldrkd_items(stages):
    """DFRA on the logits, on each of the first ``stages`` stage branches and on their fusion
    (dropped from the config by MMEngine, as every function of a config file)."""
    names = [f'stage{i + 1}' for i in range(stages)]
    return ([dict(student='logits', teacher='logits', loss=dict(type='DFRALoss'),
                  name='dfra_logits')]
            + [dict(student=name, teacher='logits', loss=dict(type='DFRALoss'),
                    connector=f'msdf.branches.{i}', name=f'dfra_{name}')
               for i, name in enumerate(names)]
            + [dict(student=names, teacher='logits', loss=dict(type='DFRALoss'),
                    connector='msdf', name='dfra_fused')])


mldrkd_losses = mldrkd_items(4)
mldrkd_losses_3stages = mldrkd_items(3)
