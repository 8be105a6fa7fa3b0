import warnings

import pytest

from kdzoo.class_names import ClassNamesError, check_class_names, class_mismatch, recorded_classes


def test_recorded_classes_reads_mmengine_meta_and_none_for_a_bare_state_dict():
    assert recorded_classes({'meta': {'dataset_meta': {'classes': ['a', 'b']}}}) == ('a', 'b')
    assert recorded_classes({'state_dict': {}}) is None
    assert recorded_classes({'weight': object()}) is None


def test_same_classes_pass_and_another_order_is_named():
    check_class_names(('a', 'b'), ['a', 'b'], 'x.pth', 'teacher', 'strict_classes=False')
    assert class_mismatch(('b', 'a'), ('a', 'b')).startswith('the same 2 classes in another order')
    with pytest.raises(ClassNamesError) as err:
        check_class_names(('b', 'a', 'c'), ('a', 'b', 'c'), 'x.pth', 'teacher', 'OPT=False')
    text = str(err.value)
    assert 'x.pth' in text and "['b', 'a', 'c']" in text and "['a', 'b', 'c']" in text
    assert text.rstrip().endswith('set OPT=False.')


def test_another_set_names_what_is_only_on_each_side():
    text = class_mismatch(('a', 'b'), ('a', 'b', 'extra'))
    assert text == "2 classes vs 3; only in the checkpoint: [], only in the data: ['extra']"


def test_no_recorded_names_warns_and_no_data_names_is_silent():
    with pytest.warns(UserWarning, match='records no class names'):
        check_class_names(None, ('a',), 'x.pth', 'student', 'OPT')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        check_class_names(('a',), None, 'x.pth', 'student', 'OPT')


def test_recorded_classes_of_older_checkpoints_and_upper_case_keys():
    # mmdet 2.x / mmseg 0.x checkpoints record meta.CLASSES; init_detector lower-cases dataset_meta
    assert recorded_classes({'meta': {'CLASSES': ('cat', 'dog')}}) == ('cat', 'dog')
    assert recorded_classes({'meta': {'dataset_meta': {'CLASSES': ['cat']}}}) == ('cat',)
    assert recorded_classes({'meta': {'dataset_meta': {'palette': []}}}) is None
