"""Batch-relational losses at a batch too small to relate anything: LFCC at 1 image, RKD under 3
give exactly 0 with zero gradient. Each says so in a warning, once per loss instance."""
import re
import warnings

import pytest
from helpers import randn

from kdzoo.losses import LFCCLoss, RKDLoss

LFCC = ('LFCCLoss: a batch of 1 gives a loss of exactly 0 with zero gradient: LFCC contrasts each '
        'image with the other images of the batch (InfoNCE), and there are none. Train with 2 or '
        'more images per batch (gather_distributed=True counts the images of every rank).')
RKD = ('RKDLoss: a batch of {} gives a loss of 0 with zero gradient: RKD compares distances and '
       'angles between the images of a batch, and below 3 images they are the same for any '
       'embeddings (one distance, normalised to 1; no angle). Train with 3 or more images per '
       'batch.')


def no_warning(loss, *inputs):
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        return loss(*inputs)


@pytest.mark.parametrize('loss, shape, batch, message', [
    (LFCCLoss, (8, 4, 4), 1, LFCC), (RKDLoss, (8,), 1, RKD.format(1)),
    (RKDLoss, (8,), 2, RKD.format(2))], ids=['lfcc-1', 'rkd-1', 'rkd-2'])
def test_too_small_batch_warns_once_per_loss(loss, shape, batch, message):
    fn = loss()
    student = randn(batch, *shape, seed=1).requires_grad_()
    with pytest.warns(UserWarning, match='^' + re.escape(message) + '$'):
        value = fn(student, randn(batch, *shape, seed=2))
    value.backward()
    assert abs(value.item()) < 1e-6 and student.grad.abs().max() < 1e-6
    no_warning(fn, student, randn(batch, *shape, seed=3))  # once per instance
    with pytest.warns(UserWarning):
        loss()(student, randn(batch, *shape, seed=3))  # another instance warns again


def test_batches_that_relate_images_do_not_warn():
    assert no_warning(LFCCLoss(), randn(2, 8, 4, 4, seed=1), randn(2, 8, 4, 4, seed=2)) > 0
    assert no_warning(RKDLoss(), randn(3, 8, seed=1), randn(3, 8, seed=2)) > 0
