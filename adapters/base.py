"""What the distilling models of every task share (classification, mmseg, mmdet)."""
from contextlib import contextmanager


def taps_of(item):
    """``(student taps as a list, teacher tap)`` of a distill item dict."""
    student = item['student']
    return ([student] if isinstance(student, str) else list(student)), item['teacher']


def check_same_classes(items, logit_taps, student_classes, teacher_classes, fix):
    """Raise ``ValueError`` when an item pairs logit taps on both sides (``logit_taps``) but the
    student and teacher predict different numbers of classes; ``fix`` says how to mend it."""
    if student_classes == teacher_classes:
        return
    for index, item in enumerate(items):
        student_taps, teacher_tap = taps_of(item)
        if all(t in logit_taps for t in student_taps) and teacher_tap in logit_taps:
            raise ValueError(
                f'distill item {index} pairs student {student_taps} with teacher {teacher_tap!r}, '
                f'but the student has num_classes={student_classes} and the teacher '
                f'num_classes={teacher_classes}; logit losses compare the same classes. {fix}')


class DistillModelMixin:
    """Student / teacher access and the teacher-prediction switch of a distilling model that
    holds ``self.distiller`` (a :class:`kdzoo.distiller.Distiller`)."""

    use_teacher = False

    @property
    def student(self):
        return self.distiller.student

    @property
    def teacher(self):
        return self.distiller.teacher

    @contextmanager
    def predicting_with_teacher(self):
        """Inside, ``predict`` / ``tensor`` modes run the teacher instead of the student (the
        teacher check hook evaluates the teacher with the runner's own val loop this way)."""
        previous, self.use_teacher = self.use_teacher, True
        try:
            yield self
        finally:
            self.use_teacher = previous
