"""gather_distributed=True on 2 CPU processes (gloo): each rank holds half of the batch.

Each rank's loss is the mean over ITS queries against the keys of ALL ranks, so the mean of the
ranks' losses must equal the 1-process loss on the concatenated batch. all_gather's backward sums
the gradients of every rank's loss, so each rank's student gradient is ``world ×`` the 1-process
gradient of its half (what DDP's gradient averaging turns into the exact 1-process gradient).
"""
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from kdzoo.losses.lfcc import LFCCLoss
from kdzoo.losses.msdcrd import MSDCRDLoss

WORLD = 2
HALF = 3
CASES = [
    (MSDCRDLoss, dict(), False),
    (MSDCRDLoss, dict(w_comp=3.0), True),  # uneven weight totals across ranks
    (LFCCLoss, dict(), False),
    (LFCCLoss, dict(symmetric=True, filter='fft'), False),  # student keys: cross-rank gradient
]


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


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


def worker(rank, port):
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=WORLD)
    try:
        for loss_cls, kwargs, with_target in CASES:
            run_case(rank, loss_cls, kwargs, with_target)
    finally:
        dist.destroy_process_group()


def test_gathered_loss_and_gradient_equal_one_process_on_full_batch():
    mp.spawn(worker, args=(free_port(),), nprocs=WORLD, join=True)
