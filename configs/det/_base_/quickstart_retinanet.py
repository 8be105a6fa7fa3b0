# A small RetinaNet for the 128 px quick-start set: 64-channel FPN and head, 10 classes, anchors
# of 16..50 px at stride 8 (octave_base_scale=2). Backbone from quickstart_*.py.
_base_ = ['./quickstart.py', 'mmdet::_base_/models/retinanet_r50_fpn.py']
model = dict(
    neck=dict(out_channels=64),
    bbox_head=dict(num_classes=10, in_channels=64, feat_channels=64, stacked_convs=2,
                   anchor_generator=dict(octave_base_scale=2)))
