"""Pieces of kdzoo.analysis.measure: images of unequal size stacked on the first one's grid, the
logit agreement and KL against torch's own formulas."""
import pytest
import torch
import torch.nn.functional as F

from kdzoo.analysis.measure import logit_terms, one_image, stack


def test_stack_brings_every_image_to_the_first_ones_grid():
    per_image = [dict(stage1=torch.randn(1, 3, 8, 6), logits=torch.randn(1, 5)),
                 dict(stage1=torch.randn(1, 3, 16, 12), logits=torch.randn(1, 5)),
                 dict(stage1=torch.randn(1, 3, 4, 3), logits=torch.randn(1, 5))]
    out = stack(per_image)
    assert out['stage1'].shape == (3, 3, 8, 6) and out['logits'].shape == (3, 5)
    assert torch.equal(out['stage1'][0], per_image[0]['stage1'][0])
    assert torch.allclose(out['stage1'][1], F.avg_pool2d(per_image[1]['stage1'], 2)[0])


def test_one_image_slices_tensors_and_lists():
    batch = dict(inputs=[torch.zeros(3, 4, 4), torch.ones(3, 5, 5)], data_samples=['a', 'b'])
    assert one_image(batch, 1)['data_samples'] == ['b']
    batch = dict(inputs=torch.arange(8.).view(2, 4), data_samples=torch.tensor([3, 7]))
    assert one_image(batch, 1)['data_samples'].tolist() == [7]


def test_logit_terms_agreement_and_kl():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    agree, kl, n = logit_terms(s, t).tolist()
    assert n == 6 and agree == float((s.argmax(1) == t.argmax(1)).sum())
    expected = F.kl_div(s.double().log_softmax(1), t.double().log_softmax(1), log_target=True,
                        reduction='sum')
    assert kl == pytest.approx(float(expected))
    maps = logit_terms(torch.randn(2, 4, 4, 4), torch.randn(2, 4, 8, 8))
    assert float(maps[2]) == 2 * 4 * 4  # every location of the common 4x4 grid a sample


@pytest.fixture(scope='module')
def same_pair(tmp_path_factory):
    """A DistillClassifier whose teacher and student are one test_resnet (no resize inside)."""
    from kdzoo.adapters.cls import DistillClassifier
    from kdzoo.registry import build
    torch.manual_seed(0)
    model_cfg = dict(type='TimmClassifier', model_name='test_resnet', num_classes=4)
    teacher = build(model_cfg)
    path = tmp_path_factory.mktemp('pair') / 'teacher.pth'
    torch.save({'state_dict': teacher.state_dict()}, path)
    model = DistillClassifier(student=model_cfg, distill_cfg=dict(
        teacher=dict(config=model_cfg, checkpoint=str(path)),
        losses=[dict(student='logits', teacher='logits', loss=dict(type='KDLoss'))]))
    model.student.load_state_dict(teacher.state_dict())
    return model.eval()


def test_batch_readouts_run_unequal_images_one_by_one(same_pair):
    from kdzoo.analysis.measure import batch_readouts
    from kdzoo.analysis.readouts import readouts
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 255, (3, s, s), generator=g, dtype=torch.uint8)
              for s in (32, 64, 32, 48)]
    batch = dict(inputs=images, data_samples=torch.zeros(4, dtype=torch.long))
    with torch.no_grad():
        student, teachers = batch_readouts(same_pair, 'cls', batch)
        alone = readouts('cls', same_pair.student, images[1][None].float())
    first = readouts('cls', same_pair.student, images[0][None].float())['stage1']
    assert student['stage1'].shape == (4,) + first.shape[1:]
    assert torch.allclose(student['stage1'][1], F.adaptive_avg_pool2d(alone['stage1'],
                                                                      first.shape[-2:])[0])
    assert torch.allclose(student['logits'][1], alone['logits'][0], atol=1e-5)
    assert list(teachers) == ['teacher']  # distill_cfg.teacher: the teacher named 'teacher'
    assert torch.allclose(teachers['teacher']['logits'], student['logits'])
    # one size: one forward, the same readouts as image by image
    same = dict(inputs=torch.stack([images[0], images[2]] * 2), data_samples=batch['data_samples'])
    with torch.no_grad():
        together, _ = batch_readouts(same_pair, 'cls', same)
    assert torch.allclose(together['stage3'][1], student['stage3'][2], atol=1e-5)
