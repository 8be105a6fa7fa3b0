# The plug-and-play matrix's CPU profile (kdzoo plug-and-play --profile cpu): sized for a 2-core
# machine without GPU, run over several sittings (every finished run is kept), output
# results/cpu/. Why each number is what it is (calibration runs, wall times): docs/results.md,
# "Measurement notes of the CPU profile".
_base_ = './gpu.py'
out = 'results/cpu'

tasks = dict(
    cls=dict(
        pairs=dict(_delete_=True, **{
            'resnet10t_to_vit': ('configs/quickstart/teacher.py',
                                 'configs/quickstart/student_plain_vit.py'),
            'vit_to_test-resnet': ('configs/plug_and_play/cls/cpu_vit.py',
                                   'configs/plug_and_play/cls/cpu_resnet.py')}),
        student_iters={'vit_to_test-resnet': 200},
        teacher_iters={'resnet10t_to_vit': 600, 'vit_to_test-resnet': 3000},
        data=dict(num_classes=10, per_class=(200, 50), px=32), iters=(500, 600), seeds=3,
        run_losses=('KD', 'DKD', 'DIST', 'OFA', 'MSDCRD', 'LFCC', 'MLDR-KD'), batch=64),
    seg=dict(data=dict(images=(400, 100), px=64), iters=(1000, 4000), seeds=2,
             run_losses=('KD', 'CWD', 'MSDCRD', 'LFCC')),
    det=dict(data=dict(images=(400, 100), px=128), iters=(300, 2000), seeds=2,
             run_losses=('CWD', 'PKD', 'MSDCRD', 'LFCC')),
)
