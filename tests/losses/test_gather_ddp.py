"""gather_distributed=True on 2 CPU processes (gloo): each rank holds half of the batch.

Each rank's loss is the mean over ITS queries against the keys of ALL ranks, so the mean of the
ranks' losses must equal the 1-process loss on the concatenated batch. all_gather's backward sums
the gradients of every rank's loss, so each rank's student gradient is ``world ×`` the 1-process
gradient of its half (what DDP's gradient averaging turns into the exact 1-process gradient).
"""
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from kdzoo.losses.lfcc import LFCCLoss
from kdzoo.losses.msdcrd import MSDCRDLoss
from kdzoo.runner import process_group_teardown

WORLD = 2
HALF = 3
CASES = [
    (MSDCRDLoss, dict(), False),
    (MSDCRDLoss, dict(w_comp=3.0), True),  # uneven weight totals across ranks
    (LFCCLoss, dict(), False),
    (LFCCLoss, dict(symmetric=True, filter='fft'), False),  # student keys: cross-rank gradient
]


def run_case(rank, loss_cls, kwargs, with_target):
    gen = torch.Generator().manual_seed(0)
    student = torch.randn(WORLD * HALF, 4, 7, 7, generator=gen)
    teacher = torch.randn(WORLD * HALF, 4, 7, 7, generator=gen)
    target = torch.tensor([0, 1, 2, 3, 0, 1]) if with_target else None
    mine = slice(rank * HALF, (rank + 1) * HALF)

    full = student.clone().requires_grad_()
    reference = loss_cls(**kwargs)(full, teacher, target=target)
    reference.backward()

    local = student[mine].clone().requires_grad_()
    local_target = None if target is None else target[mine]
    loss = loss_cls(gather_distributed=True, **kwargs)(local, teacher[mine], target=local_target)
    loss.backward()
    alone = loss_cls(**kwargs)(student[mine], teacher[mine], target=local_target)
    assert not torch.isclose(loss, alone), 'the gathered negatives must change the loss'

    mean = loss.detach().clone()
    dist.all_reduce(mean)
    torch.testing.assert_close(mean / WORLD, reference.detach(), rtol=1e-5, atol=1e-6)
    grads = [torch.empty_like(local.grad) for _ in range(WORLD)]
    dist.all_gather(grads, local.grad)
    torch.testing.assert_close(torch.cat(grads) / WORLD, full.grad, rtol=1e-4, atol=1e-7)


def worker(rank, store):
    # A file store: no rank hosts the store's server, so no rank's exit can cut another's
    # teardown short; the runner's teardown meets at a barrier before destroying the group.
    dist.init_process_group('gloo', init_method=f'file://{store}', rank=rank, world_size=WORLD)
    with process_group_teardown():
        for loss_cls, kwargs, with_target in CASES:
            run_case(rank, loss_cls, kwargs, with_target)


def test_gathered_loss_and_gradient_equal_one_process_on_full_batch(tmp_path):
    mp.spawn(worker, args=(tmp_path / 'store',), nprocs=WORLD, join=True)
