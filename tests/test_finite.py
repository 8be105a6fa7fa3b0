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
