"""Distributed training on CPU: 2 gloo processes with a BN-free student and KD give the gradients of
1 process on the concatenated batch; the teacher stays outside DDP. tools/dist_train.sh parses."""
import os
import socket
import subprocess
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tools_helpers import REPO

# A LayerNorm-only ViT student (BatchNorm statistics would differ between half and full batches)
# and a ResNet teacher (BatchNorm, frozen in eval mode).
MODEL = dict(
    type='DistillClassifier',
    student=dict(type='TimmClassifier', model_name='test_vit', num_classes=4, img_size=32),
    distill_cfg=dict(
        teacher=dict(config=dict(type='TimmClassifier', model_name='test_resnet', num_classes=4)),
        losses=[dict(student='logits', teacher='logits', loss=dict(type='KDLoss'))]))


def build_model():
    import warnings

    import kdzoo.adapters.cls  # noqa: F401
    from kdzoo.registry import build
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the teacher has no checkpoint
        return build(MODEL).train()


def batch():
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(4, 3, 32, 32, generator=generator) * 255
    return images, torch.tensor([0, 1, 2, 3])


def loss_of(model, images, labels):
    return sum(model(images, labels, mode='loss').values())


def rank_main(rank, port, out):
    """One of 2 ranks: DDP on its half of the batch; saves the synchronised gradients."""
    from mmengine.model import MMDistributedDataParallel
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=2, timeout=timedelta(seconds=60))
    try:
        model = build_model()
        ddp = MMDistributedDataParallel(module=model)
        wrapped = {id(p) for p in ddp.parameters()}
        images, labels = batch()
        half = slice(2 * rank, 2 * rank + 2)
        loss_of(ddp, images[half], labels[half]).backward()
        torch.save(dict(
            grads={n: p.grad for n, p in model.named_parameters() if p.grad is not None},
            teacher_outside=not any(id(p) in wrapped for p in model.teacher.parameters()),
            teacher_grads=[p.grad for p in model.teacher.parameters() if p.grad is not None],
        ), os.path.join(out, f'rank{rank}.pt'))
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_gradients_equal_one_process_full_batch(tmp_path):
    model = build_model()  # first: the forked ranks then inherit the imports
    mp.start_processes(rank_main, args=(free_port(), str(tmp_path)), nprocs=2, join=True,
                       start_method='fork')
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                   for m in model.student.modules())
    loss_of(model, *batch()).backward()
    expected = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert expected and all(n.startswith('distiller.student.') for n in expected)
    for rank in (0, 1):
        result = torch.load(tmp_path / f'rank{rank}.pt', weights_only=True)
        assert result['teacher_outside'] and not result['teacher_grads']
        assert result['grads'].keys() == expected.keys()
        for name, grad in expected.items():
            assert torch.allclose(result['grads'][name], grad, rtol=1e-4, atol=1e-6), name


def test_dist_train_script_parses():
    script = os.path.join(REPO, 'tools', 'dist_train.sh')
    subprocess.run(['bash', '-n', script], check=True)
    text = open(script).read()
    assert 'torch.distributed.run' in text and '--launcher pytorch' in text
