# The plug-and-play matrix's GPU profile (kdzoo plug-and-play --profile gpu, the default):
# sized for one GPU, output results/ (of the current directory). docs/results.md ("The GPU
# profile") says what it measures.
#
# A profile is data read by kdzoo.experiments.matrix: per task, the pairs (name -> (teacher
# config, student config), relative to the folder holding configs/: the checkout, or the installed
# package's copy, kdzoo/configs.py), the shipped config whose distill items
# each loss borrows (kdzoo/experiments/recipes.py fits them to the pair), the generated set's size,
# (student, teacher) iterations, seeds, the losses a run trains (None: every entry of `losses`),
# per-pair iterations where they differ from the task's, and the training batch (None: the
# config's). A task entry may also set `metric` and `scale` (the validation key and its factor to
# the table's units); the engine's defaults are the adapter's.
out = 'results'
device = None  # cuda when available
timing_repeats = 20
smoke = False  # True: tiny settings for the test suite (scratch data in tmp/data/<task>_smoke)
skip_unavailable = False  # True: leave out the tasks whose adapter does not import here

tasks = dict(
    cls=dict(
        pairs={'swin-t_to_r18': ('configs/plug_and_play/cls/swin-t.py',
                                 'configs/plug_and_play/cls/r18.py'),
               'vit-s_to_r18': ('configs/plug_and_play/cls/vit-s.py',
                                'configs/plug_and_play/cls/r18.py')},
        losses={
            'KD': 'configs/cls/kd_swin-t_to_r18_cifar100.py',
            'DKD': 'configs/cls/dkd_swin-t_to_r18_cifar100.py',
            'DIST': 'configs/cls/dist_swin-t_to_r18_cifar100.py',
            'OFA': 'configs/cls/ofa_swin-t_to_r18_cifar100.py',
            'MSDCRD': 'configs/cls/msdcrd_swin-t_to_r18_cifar100.py',
            'LFCC': 'configs/cls/lfcc_swin-t_to_r18_cifar100.py',
            'MLDR-KD': 'configs/cls/mldrkd_swin-t_to_r18_cifar100.py'},
        data=dict(num_classes=24, per_class=(400, 100), px=64),
        iters=(1000, 3000), seeds=2, run_losses=None, student_iters={}, teacher_iters={},
        batch=None),
    seg=dict(
        pairs={'swin-upernet_to_r18-pspnet': ('configs/seg/quickstart_teacher.py',
                                              'configs/seg/quickstart_student.py')},
        losses={
            'KD': 'configs/seg/kd_swin_to_r18.py',
            'CWD': 'configs/seg/cwd_swin_to_r18.py',
            'MSDCRD': 'configs/seg/msdcrd_swin_to_r18.py',
            'LFCC': 'configs/seg/lfcc_swin_to_r18.py'},
        data=dict(images=(1000, 200), px=64),
        iters=(1000, 2000), seeds=2, run_losses=None, student_iters={}, teacher_iters={},
        batch=None),
    det=dict(
        pairs={'swin-retinanet_to_r18-retinanet': (
            'configs/det/quickstart_retinanet_swin_teacher.py',
            'configs/det/quickstart_retinanet_r18.py')},
        losses={
            'CWD': 'configs/det/cwd_retinanet_x101-64x4d-to-r18_cls-scores_coco.py',
            'PKD': 'configs/det/pkd_gfl_x101-32x4d-to-r50_fpn_coco.py',
            'MSDCRD': 'configs/det/msdcrd_retinanet_x101-64x4d-to-r18_fpn_coco.py',
            'LFCC': 'configs/det/lfcc_retinanet_x101-64x4d-to-r18_fpn_coco.py'},
        data=dict(images=(1000, 200), px=128),
        iters=(1000, 2000), seeds=2, run_losses=None, student_iters={}, teacher_iters={},
        batch=None),
)
