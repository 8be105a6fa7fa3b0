"""Several teachers in one distill_cfg (``distill_cfg.teachers``), on the classification skeleton:
items on each teacher and on an ensemble, each teacher frozen, outside the state dict, run once a
step and only when an item reads it, the student's initialisation untouched, the ensemble target
equal to an independent weighted mean, the monitor and --dry-run per teacher, and every mistake a
build-time error naming its cause (docs/distill_cfg.md, "Several teachers")."""
import copy
import warnings

import pytest
import torch
import torch.nn.functional as F

import kdzoo.adapters.cls  # noqa: F401  (registers the classification models)
import kdzoo.connectors.projector  # noqa: F401  (registers Projector)
import kdzoo.losses.kd  # noqa: F401  (registers KDLoss)
import kdzoo.losses.mse  # noqa: F401  (registers MSELoss)
from kdzoo.registry import build

STUDENT = dict(type='TimmClassifier', model_name='test_resnet', num_classes=5)
VIT = dict(type='TimmClassifier', model_name='vit_tiny_patch16_224', num_classes=5, img_size=64,
           patch_size=16, depth=2, embed_dim=48, num_heads=3)
CNN = dict(type='TimmClassifier', model_name='resnet10t', num_classes=5)
LOSSES = [
    dict(student='logits', teacher='cnn:logits', loss=dict(type='KDLoss')),
    dict(student='model.layer3', teacher='vit:stage4', loss=dict(type='MSELoss'),
         connector='proj'),
    dict(student='logits', teacher=['cnn:logits', 'vit:logits'], teacher_weights=[1, 3],
         loss=dict(type='KDLoss', tau=2.0), name='ens'),
]
PROJ = dict(proj=dict(type='Projector', in_channels=192, out_channels=48))


def make(losses=LOSSES, teachers=None, **distill):
    teachers = teachers or dict(cnn=dict(config=CNN), vit=dict(config=VIT))
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*has no checkpoint')
        return build(dict(type='DistillClassifier', student=STUDENT, distill_cfg=dict(
            teachers=teachers, losses=losses, connectors=PROJ, **distill)))


def batch(n=4):
    generator = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, 32, 32, generator=generator) * 255, torch.tensor([0, 1, 2, 3])[:n]


STEMS = dict(cnn='model.conv1', vit='model.patch_embed')  # run once by each forward


def forward_counts(model):
    """``{teacher name: [forward calls]}``, counted on each teacher's stem."""
    counts = {name: [] for name in model.teachers}
    for name, teacher in model.teachers.items():
        teacher.get_submodule(STEMS[name]).register_forward_pre_hook(
            lambda *args, n=name: counts[n].append(1))
    return counts


def test_a_step_trains_the_student_only_and_runs_each_teacher_once():
    model = make().train()
    counts = forward_counts(model)
    x, labels = batch()
    losses = model(x, labels, mode='loss')
    assert {name: len(calls) for name, calls in counts.items()} == dict(cnn=1, vit=1)
    assert {k for k in losses if k.startswith('distill.loss')} == {
        'distill.loss_kd_0', 'distill.loss_mse_1', 'distill.loss_ens'}
    assert {'distill.agree_cnn', 'distill.agree_vit'} <= set(losses)
    assert 'distill.agree' not in losses
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert all(p.grad is not None for p in model.student.parameters() if p.requires_grad)
    for teacher in model.teachers.values():
        assert not teacher.training
        assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    prefixes = ('distiller.student.', 'distiller.connectors.', 'data_preprocessor')
    assert all(k.startswith(prefixes) for k in model.state_dict())
    assert list(model.teachers) == ['cnn', 'vit'] and model.teacher is model.teachers['cnn']


def test_a_teacher_no_item_reads_is_built_with_a_warning_and_never_run():
    teachers = dict(cnn=dict(config=CNN), vit=dict(config=VIT))
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match=r"distill_cfg.teachers \['vit'\]: no distill item reads"):
        model = build(dict(type='DistillClassifier', student=STUDENT, distill_cfg=dict(
            teachers=teachers, losses=LOSSES[:1])))
    counts = forward_counts(model)
    model.train()(*batch(), mode='loss')
    assert {name: len(calls) for name, calls in counts.items()} == dict(cnn=1, vit=0)


def test_the_ensemble_target_is_the_weighted_mean_of_the_members_logits():
    model = make().train()
    x, labels = batch()
    losses = model(x, labels, mode='loss')
    with torch.no_grad():
        student = model.student(x)
        cnn = model.teachers['cnn'](model.teacher_inputs(x, 'cnn'))
        vit = model.teachers['vit'](model.teacher_inputs(x, 'vit'))
        target = (1 * cnn + 3 * vit) / 4
        tau = 2.0
        expected = F.kl_div(F.log_softmax(student / tau, 1), F.softmax(target / tau, 1),
                            reduction='batchmean') * tau ** 2
    assert losses['distill.loss_ens'].item() == pytest.approx(expected.item(), rel=1e-5)


def test_the_students_initialisation_is_the_student_alone():
    torch.manual_seed(0)
    alone = build(STUDENT)
    model = make()
    assert all(torch.equal(a, b) for a, b in zip(alone.state_dict().values(),
                                                  model.student.state_dict().values()))


def test_teachers_get_random_streams_of_their_own():
    """Two teachers of the same config without checkpoints are not the same weights (each is
    built in its own isolated stream), and rebuilding gives the same weights again."""
    teachers = dict(a=dict(config=CNN), b=dict(config=CNN))
    losses = [dict(student='logits', teacher='a:logits', loss=dict(type='KDLoss')),
              dict(student='logits', teacher='b:logits', loss=dict(type='KDLoss'))]
    first, second = make(losses, teachers), make(losses, teachers)
    a, b = first.teachers['a'].state_dict(), first.teachers['b'].state_dict()
    assert not all(torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
    again = second.teachers['b'].state_dict()
    assert all(torch.equal(b[k], again[k]) for k in b)


def test_the_single_teacher_form_is_the_teacher_named_teacher():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*has no checkpoint')
        model = build(dict(type='DistillClassifier', student=STUDENT, distill_cfg=dict(
            teacher=dict(config=CNN),
            losses=[dict(student='logits', teacher='logits', loss=dict(type='KDLoss')),
                    dict(student='logits', teacher='teacher:logits', loss=dict(type='KDLoss'),
                         name='named')])))
    assert list(model.teachers) == ['teacher'] and not model.multi_teacher
    losses = model.train()(*batch(), mode='loss')
    assert 'distill.agree' in losses
    assert torch.equal(losses['distill.loss_kd_0'], losses['distill.loss_named'])


def test_dry_run_lines_name_each_items_teacher():
    model = make().train()
    lines = model.describe_step(*batch())
    assert "| teacher cnn:'logits' (4, 5) |" in lines[0]
    assert "| teacher vit:'stage4' (4, 48, 4, 4) |" in lines[1]
    assert ("| ensemble of cnn:'logits' + vit:'logits' (weights 1, 3) [(4, 5), (4, 5)] |"
            in lines[2])


def test_predicting_with_a_named_teacher_runs_that_teacher():
    model = make().eval()
    x, labels = batch()
    with torch.no_grad():
        with model.predicting_with_teacher('vit'):
            vit = model(x, labels, mode='tensor')
        with model.predicting_with_teacher():
            first = model(x, labels, mode='tensor')
        assert torch.equal(vit, model.teachers['vit'](model.teacher_inputs(x, 'vit')))
        assert torch.equal(first, model.teachers['cnn'](model.teacher_inputs(x, 'cnn')))
    with pytest.raises(KeyError, match=r"no teacher named 'swin'; defined teachers: \['cnn', "
                                       r"'vit'\]"):
        with model.predicting_with_teacher('swin'):
            pass


# -- mistakes, refused when the model is built --------------------------------------------------
def refused(error, match, losses=LOSSES, teachers=None, **distill):
    with pytest.raises(error, match=match) as info:
        make(losses, teachers, **distill)
    return str(info.value)


def test_an_unknown_teacher_is_named_on_the_last_line_with_the_defined_ones():
    losses = [dict(student='logits', teacher='swin:logits', loss=dict(type='KDLoss'))]
    message = refused(ValueError, 'swin', losses)
    assert message.splitlines()[-1] == "unknown teacher 'swin'; defined teachers: ['cnn', 'vit']"


def test_an_item_without_a_teacher_name_under_several_teachers_is_refused():
    losses = [dict(student='logits', teacher='logits', loss=dict(type='KDLoss'))]
    refused(ValueError, r"distill item 0: teacher 'logits' names no teacher, and the config has "
                        r"2: write it as 'NAME:logits' with NAME one of \['cnn', 'vit'\]", losses)


def test_one_teacher_under_teachers_needs_no_name():
    losses = [dict(student='logits', teacher='logits', loss=dict(type='KDLoss'))]
    model = make(losses, dict(cnn=dict(config=CNN)))
    assert model.distiller.items[0].sources == (('cnn', 'logits'),)


def test_the_name_teacher_is_kept_for_the_one_teacher_form():
    losses = [dict(student='logits', teacher='teacher:logits', loss=dict(type='KDLoss'))]
    refused(ValueError, "distill_cfg.teachers: the name 'teacher' is the one teacher of "
                        'distill_cfg.teacher; under teachers= give each teacher a name of its own',
            losses, dict(teacher=dict(config=CNN), vit=dict(config=VIT)))


def test_teacher_and_teachers_together_are_refused():
    refused(ValueError, 'distill_cfg has both `teacher` and `teachers`', teacher=dict(config=CNN))


@pytest.mark.parametrize('name', ['vit-s', '1st', 'a.b', ''])
def test_a_teacher_name_that_is_no_identifier_is_refused(name):
    losses = [dict(student='logits', teacher='logits', loss=dict(type='KDLoss'))]
    refused(ValueError, f'the name {name!r} is not a Python identifier', losses,
            {name: dict(config=CNN)})


def test_a_teacher_that_is_the_student_or_shares_its_parameters_is_refused():
    torch.manual_seed(0)
    student = build(STUDENT)
    losses = [dict(student='logits', teacher='a:logits', loss=dict(type='KDLoss'))]
    for teacher, says in ((student, 'distill_cfg.teachers.a is the student module itself'),
                          (copy.copy(student), 'distill_cfg.teachers.a shares')):
        with pytest.raises(ValueError, match=says):
            build(dict(type='DistillClassifier', student=student, distill_cfg=dict(
                teachers=dict(a=teacher), losses=losses)))
        assert all(p.requires_grad for p in student.parameters())  # left as it was


def test_two_teachers_that_are_the_same_module_are_refused():
    torch.manual_seed(0)
    teacher = build(CNN)
    refused(ValueError, 'distill_cfg.teachers.cnn and distill_cfg.teachers.vit are the same '
                        'module', teachers=dict(cnn=teacher, vit=teacher))


def test_an_ensemble_of_teachers_with_other_class_counts_is_refused_at_build():
    ten = dict(VIT, num_classes=10)
    losses = [dict(student='model.layer3', teacher=['cnn:logits', 'vit:logits'],
                   connector='proj', loss=dict(type='MSELoss'))]
    refused(ValueError, r"distill item 0: its ensemble averages class scores of teachers that "
                        r"predict different classes \(cnn:logits: 5 classes, vit:logits: 10 "
                        r"classes\)", losses, dict(cnn=dict(config=CNN), vit=dict(config=ten)))


def test_an_ensemble_of_other_shapes_is_an_error_naming_both():
    losses = [dict(student='model.layer3', teacher=['cnn:stage4', 'vit:stage4'],
                   connector='proj', loss=dict(type='MSELoss'))]
    model = make(losses).train()
    with pytest.raises(ValueError, match=r"its ensemble averages cnn:stage4 of shape "
                                         r"\(4, 512, 1, 1\) with vit:stage4 of shape "
                                         r"\(4, 48, 4, 4\); members must have the same shape"):
        model.describe_step(*batch())


@pytest.mark.parametrize('item, says', [
    (dict(teacher='cnn:logits', teacher_weights=[1.0]),
     "teacher_weights weigh the members of an ensemble"),
    (dict(teacher=['cnn:logits', 'vit:logits'], teacher_weights=[1.0]),
     r'teacher_weights must be a list of 2 numbers'),
    (dict(teacher=['cnn:logits', 'vit:logits'], teacher_weights=[1.0, -1.0]),
     r'teacher_weights must be a finite number >= 0, got -1.0'),
    (dict(teacher=['cnn:logits', 'vit:logits'], teacher_weights=[1, 0]),
     r"teacher_weights give \['vit:logits'\] weight 0: their teachers would run for nothing"),
    (dict(teacher=['cnn:logits', 'cnn:logits']), r"the ensemble lists \['cnn:logits'\] twice"),
    (dict(teacher=['cnn:logits']), r'a list of two or more'),
    (dict(teacher='cnn:'), r"teacher 'cnn:' names no tap after 'cnn'"),
])
def test_ensemble_and_name_mistakes_are_refused(item, says):
    losses = [dict(student='logits', loss=dict(type='KDLoss'), **item)]
    refused(ValueError, says, losses)
