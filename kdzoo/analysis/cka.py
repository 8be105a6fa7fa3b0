"""Linear CKA between two representations, estimated minibatch by minibatch.

Reference: Nguyen, Raghu, Kornblith, "Do Wide and Deep Networks Learn the Same Things? Uncovering
How Neural Network Representations Vary with Width and Depth", ICLR 2021, arXiv 2010.15327,
Sec. 3 (minibatch CKA), with the unbiased HSIC estimator of Song et al., "Feature Selection via
Dependence Maximization", JMLR 13, 2012, Eq. 5.

A representation of ``n >= 4`` examples is ``X (n, p)``: one flattened readout per example. With
the linear Gram matrices ``K = X Xᵀ``, ``L = Y Yᵀ`` and ``K̃``, ``L̃`` the same with a zero
diagonal::

    HSIC_1(K, L) = 1 / (n (n - 3)) · [ tr(K̃ L̃) + (1ᵀ K̃ 1)(1ᵀ L̃ 1) / ((n - 1)(n - 2))
                                       - 2 / (n - 2) · 1ᵀ K̃ L̃ 1 ]

and over minibatches ``i = 1..k`` (the paper's ``1/k`` factors cancel)::

    CKA = Σ_i HSIC_1(K_i, L_i) / sqrt( Σ_i HSIC_1(K_i, K_i) · Σ_i HSIC_1(L_i, L_i) )

``HSIC_1`` is unbiased, so the sums converge to the population value whatever the batch size, and
only one minibatch is held at a time: memory does not grow with the number of batches. ``HSIC_1``
is the inner product of the U-centred Gram matrices, so ``|CKA| <= 1`` and ``CKA(X, X) = 1``.
Linear CKA is invariant to orthogonal transforms and isotropic scaling of either representation
(not to every invertible linear map); it is ``nan`` when a representation is constant over the
examples (``HSIC_1(K, K) = 0``).
"""
import torch

from kdzoo.layout import align

MIN_EXAMPLES = 4


def gram(x):
    """The linear Gram matrix ``X Xᵀ`` ``(n, n)`` of ``x (n, ...)`` flattened per example, in
    float64."""
    x = x.detach().flatten(1).double()
    return x @ x.T


def hsic1(k, l):
    """The unbiased HSIC estimator ``HSIC_1(K, L)`` of two ``(n, n)`` Gram matrices (module doc,
    Song et al. 2012 Eq. 5); ``n >= 4``."""
    n = k.shape[0]
    if n < MIN_EXAMPLES:
        raise ValueError(f'hsic1: the unbiased HSIC estimator needs at least {MIN_EXAMPLES} '
                         f'examples per batch, got {n}')
    k = k - torch.diag(torch.diag(k))
    l = l - torch.diag(torch.diag(l))
    k_sums, l_sums = k.sum(1), l.sum(1)
    trace = (k * l.T).sum()
    return (trace + k_sums.sum() * l_sums.sum() / ((n - 1) * (n - 2))
            - 2 / (n - 2) * (k_sums @ l_sums)) / (n * (n - 3))


def hsic_terms(x, y):
    """``[HSIC_1(K, L), HSIC_1(K, K), HSIC_1(L, L)]`` of one minibatch ``x (n, ...)``,
    ``y (n, ...)``: the three sums the minibatch CKA accumulates."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f'hsic_terms: x and y hold {x.shape[0]} and {y.shape[0]} examples; '
                         'CKA compares two representations of the same examples')
    k, l = gram(x), gram(y)
    return torch.stack([hsic1(k, l), hsic1(k, k), hsic1(l, l)])


def cka_from_terms(terms):
    """CKA from summed ``hsic_terms`` ``(..., 3)``: ``Σ HSIC(K, L) / sqrt(Σ HSIC(K, K) ·
    Σ HSIC(L, L))``; ``nan`` where a representation was constant."""
    return terms[..., 0] / (terms[..., 1] * terms[..., 2]).sqrt()


def minibatch_cka(batches):
    """Linear CKA over an iterable of minibatches ``(x, y)`` (module doc)."""
    return cka_from_terms(sum(hsic_terms(x, y) for x, y in batches))


def common_grid(student, teacher):
    """Two readouts of the same examples as flattened features for CKA: two dense maps
    ``(B, C, H, W)`` are first brought to their common (smaller) grid by
    :func:`kdzoo.layout.align` (average pooling); vectors ``(B, K)`` are kept as they are."""
    if student.dim() == 4 and teacher.dim() == 4:
        student, teacher = align(student, teacher)
    return student.flatten(1), teacher.flatten(1)
