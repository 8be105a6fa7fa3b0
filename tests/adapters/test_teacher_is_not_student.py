"""A teacher that is the student itself (or shares its parameters) is refused when the distilling
model is built, before anything is frozen: freezing it would freeze the student, and KD would
compare it with itself (then a cryptic autograd error)."""
import copy
import re

import pytest

from kdzoo.adapters.cls import DistillClassifier, TimmClassifier

KD = [dict(student='logits', teacher='logits', loss=dict(type='KDLoss'))]


def distill(student, teacher):
    return DistillClassifier(student, dict(teacher=teacher, losses=KD))


def test_the_student_module_as_teacher_is_an_error():
    student = TimmClassifier('test_resnet', num_classes=4)
    with pytest.raises(ValueError, match='^' + re.escape(
            'distill_cfg.teacher is the student module itself; give the teacher as its own '
            'model: dict(config=..., checkpoint=...) or another nn.Module') + '$'):
        distill(student, student)


def test_a_teacher_sharing_parameters_is_an_error():
    student = TimmClassifier('test_resnet', num_classes=4)
    teacher = copy.deepcopy(student)
    teacher.model.fc = student.model.fc  # the head is the student's own
    with pytest.raises(ValueError, match=re.escape(
            'distill_cfg.teacher shares 2 parameters with the student (model.fc.weight, '
            'model.fc.bias); freezing the teacher would freeze them in the student.')):
        distill(student, teacher)
    assert all(p.requires_grad for p in student.parameters())  # refused before freezing
    model = distill(student, copy.deepcopy(student))  # a copy is a teacher of its own
    assert all(p.requires_grad for p in model.student.parameters())
