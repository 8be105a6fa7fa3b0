# The plug-and-play matrix's smoke profile (kdzoo plug-and-play --smoke, what the test suite
# runs): tiny models and data, 2 iterations, losses none and MSDCRD, one seed, on the CPU;
# classification, plus seg / det where their adapters import.
_base_ = './gpu.py'
out = 'results/smoke'
device = 'cpu'
timing_repeats = 2
smoke = True
skip_unavailable = True

tasks = dict(
    cls=dict(
        pairs=dict(_delete_=True, **{
            'tiny-swin_to_tiny-resnet': ('configs/plug_and_play/cls/tiny_swin.py',
                                         'configs/plug_and_play/cls/tiny_resnet.py'),
            'tiny-vit_to_tiny-resnet': ('configs/plug_and_play/cls/tiny_vit.py',
                                        'configs/plug_and_play/cls/tiny_resnet.py')}),
        data=dict(num_classes=24, per_class=(1, 1), px=32),
        iters=(2, 2), seeds=1, run_losses=('MSDCRD',), batch=8),
    seg=dict(data=dict(images=(4, 2), px=64), iters=(2, 2), seeds=1, run_losses=('MSDCRD',),
             batch=2),
    det=dict(data=dict(images=(4, 2), px=128), iters=(2, 2), seeds=1, run_losses=('MSDCRD',),
             batch=2),
)
