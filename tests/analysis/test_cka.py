"""Linear CKA with the unbiased HSIC (kdzoo.analysis.cka) against an independent formula: the
U-statistic of Song et al. 2012 (Theorem 2) summed over every ordered 4-tuple of distinct
examples; CKA of a representation with itself is 1, invariant to an orthogonal transform and an
isotropic scaling; the minibatch estimate is the full-batch one with one batch."""
import itertools
import math

import pytest
import torch

from kdzoo.analysis.cka import cka_from_terms, common_grid, gram, hsic1, hsic_terms, minibatch_cka


def hsic_u_statistic(k, l):
    """HSIC_1 = (n-4)!/n! Σ_{(i,j,q,r) distinct} [k_ij l_ij + k_ij l_qr - 2 k_ij l_iq]."""
    n = k.shape[0]
    total = sum(k[i, j] * l[i, j] + k[i, j] * l[q, r] - 2 * k[i, j] * l[i, q]
                for i, j, q, r in itertools.permutations(range(n), 4))
    return float(total) * math.factorial(n - 4) / math.factorial(n)


def reference_cka(batches):
    """Σ HSIC(K, L) / sqrt(Σ HSIC(K, K) Σ HSIC(L, L)) with the U-statistic HSIC."""
    sums = [0.0, 0.0, 0.0]
    for x, y in batches:
        k = x.flatten(1).double() @ x.flatten(1).double().T
        l = y.flatten(1).double() @ y.flatten(1).double().T
        for index, (a, b) in enumerate(((k, l), (k, k), (l, l))):
            sums[index] += hsic_u_statistic(a, b)
    return sums[0] / math.sqrt(sums[1] * sums[2])


def orthogonal(p, seed):
    q, _ = torch.linalg.qr(torch.randn(p, p, generator=torch.Generator().manual_seed(seed),
                                       dtype=torch.float64))
    return q


@pytest.mark.parametrize('n', [4, 5, 7])
def test_hsic1_is_the_u_statistic(n):
    g = torch.Generator().manual_seed(n)
    x, y = torch.randn(n, 6, generator=g), torch.randn(n, 3, 2, generator=g)
    k, l = gram(x), gram(y)
    assert float(hsic1(k, l)) == pytest.approx(hsic_u_statistic(k, l), rel=1e-9, abs=1e-12)
    assert float(hsic1(k, k)) == pytest.approx(hsic_u_statistic(k, k), rel=1e-9)


def test_minibatch_cka_matches_the_reference_and_the_full_batch_with_one_batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 8, generator=g)
    y = x[:, :5] @ torch.randn(5, 4, generator=g) + 0.5 * torch.randn(12, 4, generator=g)
    batches = [(x[i:i + 6], y[i:i + 6]) for i in (0, 6)]
    assert float(minibatch_cka(batches)) == pytest.approx(reference_cka(batches), rel=1e-9)
    assert float(minibatch_cka([(x, y)])) == pytest.approx(reference_cka([(x, y)]), rel=1e-9)
    assert float(minibatch_cka([(x, y)])) == float(cka_from_terms(hsic_terms(x, y)))


def test_hsic1_refuses_fewer_than_four_examples():
    with pytest.raises(ValueError, match='at least 4'):
        hsic1(gram(torch.randn(3, 2)), gram(torch.randn(3, 2)))


def test_cka_of_a_model_stage_with_itself_is_one_and_invariant(tiny_stage):
    """A real stage map (B, C, H, W) of a timm model: CKA with itself 1; with an orthogonal
    transform of its flattened features, and with a scaled copy, still 1 (to float precision)."""
    x = tiny_stage.flatten(1).double()
    y = tiny_stage.flatten(1).double() @ orthogonal(x.shape[1], 1)
    batches = [(x[i:i + 4], x[i:i + 4]) for i in (0, 4)]
    assert float(minibatch_cka(batches)) == pytest.approx(1.0, abs=1e-9)
    for other in (y, 3.7 * x, 0.01 * y):
        batches = [(x[i:i + 4], other[i:i + 4]) for i in (0, 4)]
        assert float(minibatch_cka(batches)) == pytest.approx(1.0, abs=1e-9)
        assert reference_cka(batches) == pytest.approx(1.0, abs=1e-9)
    # and the invariance is of CKA, not of the values: another stage gives another, equal, number
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    base = float(minibatch_cka([(x, z)]))
    assert base < 0.99
    assert float(minibatch_cka([(2.5 * y, z @ orthogonal(16, 3))])) == pytest.approx(base, rel=1e-9)


def test_common_grid_pools_maps_to_the_smaller_grid_and_keeps_vectors():
    s, t = torch.randn(4, 3, 8, 8), torch.randn(4, 5, 2, 2)
    fs, ft = common_grid(s, t)
    assert fs.shape == (4, 3 * 4) and ft.shape == (4, 5 * 4)
    fs, ft = common_grid(s, torch.randn(4, 10))
    assert fs.shape == (4, 3 * 64) and ft.shape == (4, 10)


@pytest.fixture(scope='module')
def tiny_stage():
    """stage3 of timm's test_resnet (random init) on 8 random images."""
    import timm
    torch.manual_seed(0)
    model = timm.create_model('test_resnet', num_classes=4).eval()
    with torch.no_grad():
        return model.forward_intermediates(torch.randn(8, 3, 32, 32), indices=[2],
                                           intermediates_only=True)[0]
