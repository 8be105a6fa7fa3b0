"""TimmClassifier: reserved readouts on a CNN, a ViT, a Swin, a Mixer, an EfficientViM (the Mamba
family, three stages) and a MambaOut (channels-last); preprocessing; modes; checkpoints in plain
timm keys; errors with suggestions."""
import pytest
import timm
import torch

from kdzoo.adapters.cls import RESERVED, TimmClassifier, export_state_dict
from kdzoo.adapters.cls.dense_head import is_fused_head
from kdzoo.layout import to_map
from kdzoo.registry import build

TINY = {
    'cnn': dict(model_name='test_resnet', num_classes=5),
    'vit': dict(model_name='vit_tiny_patch16_224', num_classes=5, img_size=32, patch_size=8,
                depth=8, embed_dim=48, num_heads=3),
    'swin': dict(model_name='swin_tiny_patch4_window7_224', num_classes=5, img_size=64,
                 window_size=2, embed_dim=24, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1)),
    'mixer': dict(model_name='mixer_s16_224', num_classes=5, img_size=32),
    # the Mamba family: EfficientViM's HSM-SSD state-space mixer, plain PyTorch, three stages
    'efficientvim': dict(model_name='efficientvim_m1', num_classes=5, img_size=96,
                         embed_dim=(16, 24, 32), depths=(1, 1, 1), state_dim=(4, 4, 4)),
    # a gated CNN whose final features are channels-last (NHWC)
    'mambaout': dict(model_name='mambaout_femto', num_classes=5, img_size=64,
                     depths=(1, 1, 1, 1), dims=(8, 16, 24, 32)),
}
# (B, C, h, w) of stage1.. (as many as the model has) and the final grid, for 32x32 inputs
# (resized to img_size inside the model: swin 64, efficientvim 96, mambaout 64).
EXPECTED = {
    'cnn': ([(32, 8, 8), (48, 4, 4), (192, 2, 2), (96, 1, 1)], (1, 1)),
    'vit': ([(48, 4, 4)] * 4, (4, 4)),
    'swin': ([(24, 16, 16), (48, 8, 8), (96, 4, 4), (192, 2, 2)], (2, 2)),
    'mixer': ([(512, 2, 2)] * 4, (2, 2)),
    'efficientvim': ([(16, 6, 6), (24, 3, 3), (32, 2, 2)], (2, 2)),  # 96 / 16, then ceil halves
    'mambaout': ([(8, 16, 16), (16, 8, 8), (24, 4, 4), (32, 2, 2)], (2, 2)),
}
# heads that do not pool back to the logits: the CLS token (vit), a norm + MLP after pooling
# (mambaout)
NOT_POOLING_BACK = ('vit', 'mambaout')


def images(batch=2, size=32, seed=0):
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 255


@pytest.fixture(scope='module', params=sorted(TINY))
def family(request):
    torch.manual_seed(0)
    return request.param, build(dict(type='TimmClassifier', **TINY[request.param])).eval()


def test_every_reserved_readout_in_one_pass(family):
    name, model = family
    x = images()
    stages, grid = EXPECTED[name]
    out = model.readouts(x, RESERVED[:3 + len(stages)])
    assert [tuple(out[f'stage{i + 1}'].shape) for i in range(len(stages))] == [
        (2, *s) for s in stages]
    assert tuple(out['dense_logits'].shape) == (2, 5, *grid)
    assert torch.allclose(out['logits'], model(x), atol=1e-5)
    assert torch.allclose(out['logits'], model.model(model.preprocess(x)), atol=1e-5)
    # the pooled features before the classifier: what timm's FeatureDistillationTask distils
    features = model.model.forward_features(model.preprocess(x))
    assert torch.equal(out['pre_logits'], model.model.forward_head(features, pre_logits=True))
    width = getattr(model.model, 'head_hidden_size', None) or model.model.num_features
    assert out['pre_logits'].shape == (2, width)
    if not is_fused_head(model.model):  # one classifier on the pooled features
        assert torch.allclose(model.model.get_classifier()(out['pre_logits']), out['logits'],
                              atol=1e-5)
    # avg-pool + linear heads: the dense logits pool back to the logits
    pools_back = torch.allclose(out['dense_logits'].mean((2, 3)), out['logits'], atol=1e-5)
    assert pools_back == (name not in NOT_POOLING_BACK)


def test_missing_stage_names_the_model_and_its_stage_count():
    model = TimmClassifier(**TINY['efficientvim'])
    with pytest.raises(ValueError, match=r"'stage4' is not a readout of efficientvim_m1; "
                                         r"available: \['logits', 'dense_logits', 'pre_logits', "
                                         r"'stage1', "
                                         r"'stage2', 'stage3'\].*has 3 stages"):
        model.readouts(images(), ['stage4'])


def test_efficientvim_stages_are_its_stage_maps_before_downsampling():
    torch.manual_seed(0)
    model = TimmClassifier(**TINY['efficientvim']).eval()
    recorded = {}
    for i, stage in enumerate(model.model.stages):  # a stage returns (map, next input, hidden)
        stage.register_forward_hook(lambda m, a, out, i=i: recorded.__setitem__(i, out[0]))
    out = model.readouts(images(), ['stage1', 'stage2', 'stage3'])
    for i in range(3):
        assert torch.equal(out[f'stage{i + 1}'], recorded[i])


def efficientvim_dense_logits(model, x, heads, weights):
    """EfficientViM's head written per location: the softmax-weighted hidden-state heads (one
    value per image) plus the final-map head at every location."""
    *hidden, final = model.model.forward_features(model.preprocess(x))  # final: (B, C, h*w)
    w = weights.softmax(-1)
    per_image = sum(w[i] * heads[i](hidden[i].mean(-1)) for i in range(3))  # (B, K)
    side = int(round(final.shape[-1] ** 0.5))
    per_location = torch.einsum('bcp,kc->bkp', final, heads[3].weight) + heads[3].bias[:, None]
    return (per_image[:, :, None] + w[3] * per_location).unflatten(-1, (side, side))


@pytest.mark.parametrize('model_name', ['efficientvim_m1', 'efficientvim_m1_dist'])
def test_efficientvim_dense_logits_are_its_fused_head_per_location(model_name):
    torch.manual_seed(0)
    model = TimmClassifier(**dict(TINY['efficientvim'], model_name=model_name)).eval()
    with torch.no_grad():  # weights away from their uniform initialisation
        for p in [model.model.weights] + ([model.model.weights_dist]
                                          if hasattr(model.model, 'weights_dist') else []):
            p.normal_()
    x = images()
    out = model.readouts(x, ['dense_logits', 'logits'])
    expected = efficientvim_dense_logits(model, x, model.model.heads, model.model.weights)
    if hasattr(model.model, 'heads_dist'):  # eval: the mean of both head sets
        expected = (expected + efficientvim_dense_logits(
            model, x, model.model.heads_dist, model.model.weights_dist)) / 2
    torch.testing.assert_close(out['dense_logits'], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out['dense_logits'].mean((2, 3)), out['logits'],
                               rtol=1e-5, atol=1e-5)


def test_mambaout_channels_last_dense_logits_are_its_head_per_location():
    torch.manual_seed(0)
    model = TimmClassifier(**TINY['mambaout']).eval()
    assert model.model.output_fmt == 'NHWC'
    x = images()
    out = model.readouts(x, ['dense_logits', 'stage4'])
    features = model.model.forward_features(model.preprocess(x))  # (B, h, w, C)
    head = model.model.head
    expected = head.fc(head.pre_logits(head.norm(features))).permute(0, 3, 1, 2)
    torch.testing.assert_close(out['dense_logits'], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out['stage4'], features.permute(0, 3, 1, 2))


def test_dense_logits_error_names_model_and_readout_where_none_exists():
    model = TimmClassifier('levit_128s', num_classes=5)  # two heads (head, head_dist)
    with pytest.raises(ValueError, match=r"'dense_logits' is not a readout of levit_128s: its "
                                         r"classifier is a tuple"):
        model.check_readouts(['dense_logits'])
    model.check_readouts(['logits', 'stage1'])


def test_only_requested_readouts(family):
    _, model = family
    assert set(model.readouts(images(), ['stage2', 'logits'])) == {'stage2', 'logits'}


def test_resnet_dense_logits_pool_back_on_a_larger_grid():
    model = TimmClassifier('test_resnet', num_classes=4).eval()
    out = model.readouts(images(size=96), ['dense_logits', 'logits'])
    assert out['dense_logits'].shape == (2, 4, 3, 3)
    assert torch.allclose(out['dense_logits'].mean((2, 3)), out['logits'], atol=1e-5)


def test_cls_token_vit_dense_logits_are_the_head_on_patch_tokens():
    torch.manual_seed(0)
    model = TimmClassifier(**TINY['vit']).eval()
    x = images()
    out = model.readouts(x, ['dense_logits', 'logits'])
    tokens = model.model.forward_features(model.preprocess(x))
    expected = to_map(model.model.head(tokens), 'tokens', num_prefix_tokens=1)
    assert torch.allclose(out['dense_logits'], expected, atol=1e-5)
    assert not torch.allclose(out['dense_logits'].mean((2, 3)), out['logits'], atol=1e-3)


def test_plain_vit_stages_are_blocks_spread_over_depth():
    torch.manual_seed(0)
    model = TimmClassifier(**TINY['vit']).eval()  # depth 8 -> blocks 1, 3, 5, 7
    recorded = {}
    for i in (1, 3, 5, 7):
        model.model.blocks[i].register_forward_hook(
            lambda m, a, out, i=i: recorded.__setitem__(i, out))
    out = model.readouts(images(), ['stage1', 'stage2', 'stage3', 'stage4'])
    for stage, block in zip(range(1, 5), (1, 3, 5, 7)):
        expected = to_map(recorded[block], 'tokens', num_prefix_tokens=1)
        assert torch.allclose(out[f'stage{stage}'], expected, atol=1e-6)


def test_hierarchical_stages_are_the_last_four_feature_stages():
    model = TimmClassifier('test_resnet', num_classes=3).eval()
    assert [model.model.feature_info[i]['module'] for i in model.stage_indices] == [
        'layer1', 'layer2', 'layer3', 'layer4']


def test_preprocess_resizes_then_normalises():
    model = TimmClassifier('test_resnet', num_classes=3, img_size=48, mean=(10, 20, 30),
                           std=(2, 4, 5))
    x = images(size=32)
    resized = torch.nn.functional.interpolate(x, size=(48, 48), mode='bilinear',
                                              align_corners=False)
    expected = (resized - torch.tensor([10., 20., 30.]).view(1, 3, 1, 1)) / torch.tensor(
        [2., 4., 5.]).view(1, 3, 1, 1)
    assert torch.allclose(model.preprocess(x), expected)
    assert TimmClassifier('test_resnet', num_classes=3).preprocess(x).shape[-1] == 32


def test_modes_loss_predict_tensor():
    model = TimmClassifier('test_resnet', num_classes=3, label_smoothing=0.1)
    x, labels = images(batch=3), torch.tensor([0, 2, 1])
    logits = model(x)
    loss = model(x, labels, mode='loss')
    expected = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
    assert set(loss) == {'loss_cls'} and torch.allclose(loss['loss_cls'], expected, atol=1e-5)
    model.eval()
    results = model(x, labels, mode='predict')
    assert len(results) == 3
    assert int(results[1]['gt_label']) == 2
    assert int(results[0]['pred_label']) == int(model(x)[0].argmax())
    with pytest.raises(ValueError, match="unknown mode 'bogus'"):
        model(x, mode='bogus')


def test_state_dict_is_plain_timm_and_checkpoint_loads(tmp_path):
    model = TimmClassifier('test_resnet', num_classes=3).eval()
    plain = export_state_dict(model.state_dict())
    timm_model = timm.create_model('test_resnet', num_classes=3, pretrained=False).eval()
    timm_model.load_state_dict(plain)  # strict
    path = tmp_path / 'plain.pth'
    torch.save(plain, path)
    loaded = TimmClassifier('test_resnet', num_classes=3, checkpoint=str(path)).eval()
    x = images()
    assert torch.allclose(loaded(x), model(x), atol=1e-6)
    assert torch.allclose(timm_model(model.preprocess(x)), model(x), atol=1e-6)


def test_unknown_timm_name_suggests_close_names():
    with pytest.raises(ValueError,
                       match=r"unknown timm model 'vit_tiny_patch16_244'.*'vit_tiny_patch16_224'"):
        TimmClassifier('vit_tiny_patch16_244', num_classes=3)


def test_unknown_readout_lists_available():
    model = TimmClassifier('test_resnet', num_classes=3)
    with pytest.raises(ValueError,
                       match=r"'stage5' is not a readout of test_resnet.*closest: \['stage"):
        model.readouts(images(), ['stage5'])
