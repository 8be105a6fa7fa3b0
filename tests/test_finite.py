"""kdzoo/finite.py: the one non-finite check (the distiller's every step, the diagnostics')."""
import re

import pytest
import torch

from kdzoo.finite import NonFiniteError, all_finite, check_finite


def test_all_finite_reads_nested_float_tensors_only():
    assert all_finite([torch.ones(2), (torch.zeros(3), [torch.tensor(1.5)]), 'text', None])
    assert all_finite(torch.tensor([1, 2]))  # integer tensors cannot hold a NaN
    assert not all_finite([torch.ones(2), (torch.tensor([0.0, float('inf')]),)])
    assert not all_finite(torch.tensor(float('nan')))


def test_check_finite_names_the_first_nonfinite_side():
    teacher = torch.tensor([[1.0, float('nan')], [float('-inf'), 0.0]])
    check_finite({'teacher': torch.ones(2), 'loss': torch.tensor(0.5)}, 'nowhere')
    with pytest.raises(NonFiniteError, match='^' + re.escape(
            "non-finite values (NaN or Inf) in distill item 'x' at iteration 2: the teacher side "
            'has 2 of 4 values non-finite; the teacher produced it:')):
        check_finite({'teacher': [teacher], 'student': [teacher], 'loss': teacher.sum()},
                     "distill item 'x' at iteration 2")
    assert issubclass(NonFiniteError, FloatingPointError)


def test_finite_flag_is_computed_on_the_device_and_trips_on_nan_or_inf():
    from kdzoo.finite import finite_flag
    assert finite_flag([torch.ones(2), (torch.zeros(3),)]).item() is True
    assert finite_flag([torch.ones(2), torch.tensor([1.0, float('nan')])]).item() is False
    assert finite_flag(torch.tensor([float('inf'), float('-inf')])).item() is False
    assert finite_flag(torch.tensor([1e4, float('inf')], dtype=torch.float16)).item() is False
    assert finite_flag([torch.tensor([1, 2]), 'text']) is None  # no floating-point tensor


def test_pending_checks_report_the_first_tripped_check_with_the_exact_error():
    from kdzoo.finite import PendingChecks
    checks = PendingChecks()
    checks.add({'teacher': torch.ones(2), 'loss': torch.tensor(0.5)}, 'item a')
    checks.add({'teacher': torch.tensor([1.0, float('nan')]), 'loss': torch.tensor(0.5)},
               'item b')
    flags = checks.flags()
    assert [bool(f) for f in flags] == [True, False]
    with pytest.raises(NonFiniteError, match=r'^non-finite values \(NaN or Inf\) in item b: the '
                                             r'teacher side has 1 of 2 values non-finite'):
        checks.report([bool(f) for f in flags])
    assert len(checks) == 0
    checks.verify()  # nothing pending: nothing read, nothing raised


def test_an_overflowing_sum_of_finite_values_is_no_error():
    """The flag sums each tensor: finite values near float32's maximum overflow the sum, the flag
    trips, and the exact check finds every value finite."""
    from kdzoo.finite import PendingChecks, finite_flag
    big = torch.full((4,), 3e38)
    assert finite_flag(big).item() is False
    checks = PendingChecks()
    checks.add({'student': big}, 'item')
    checks.verify()  # no error
