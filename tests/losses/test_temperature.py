"""Every loss with a temperature refuses a bad one when it is built: 0 divides by zero, a negative
temperature inverts the softmax, NaN / inf / a string / a bool make no sense — none may train."""
import math

import pytest

from kdzoo import losses

TEMPERED = ['CWDLoss', 'DFRALoss', 'DISTLoss', 'DKDLoss', 'KDLoss', 'LFCCLoss', 'MSDCRDLoss',
            'OFALoss', 'SDDLoss']


@pytest.mark.parametrize('name', TEMPERED)
@pytest.mark.parametrize('tau', [0, -1.0, math.nan, math.inf, '4', True])
def test_bad_temperature_is_a_build_error(name, tau):
    with pytest.raises(ValueError, match=rf'{name}: tau must be a positive number \(the '
                                         rf'.* temperature, .* by default\), got {tau!r}'):
        getattr(losses, name)(tau=tau)


@pytest.mark.parametrize('name', TEMPERED)
def test_good_temperature_is_kept(name):
    assert getattr(losses, name)(tau=0.5).tau == 0.5
