"""Classification data: CIFAR-100 pickles, ImageFolder, augmentation, the generated shapes set,
the Accuracy metric, and all of it inside MMEngine's Runner with a distilling model."""
import filecmp
import os
import pickle
import re

import numpy as np
import pytest
import timm
import torch
from PIL import Image

import kdzoo.hooks  # noqa: F401  (registers TeacherCheckHook)
import kdzoo.losses.kd  # noqa: F401  (registers KDLoss)
from kdzoo.adapters import student_state_dict
from kdzoo.adapters.cls import Accuracy, Cifar100Cls, ImageFolderCls
from kdzoo.adapters.cls.data import crop_flip
from kdzoo.toydata import make_shapes_dataset


def write_cifar(root, split, n, seed=0, protocol=pickle.DEFAULT_PROTOCOL):
    rng = np.random.default_rng(seed)
    folder = root / 'cifar-100-python'
    folder.mkdir(exist_ok=True)
    batch = {b'data': rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b'fine_labels': rng.integers(0, 100, n).tolist(),
             b'coarse_labels': rng.integers(0, 20, n).tolist()}
    (folder / split).write_bytes(pickle.dumps(batch, protocol=protocol))
    names = [f'class{i}'.encode() for i in range(100)]
    (folder / 'meta').write_bytes(pickle.dumps({b'fine_label_names': names}, protocol=protocol))
    return batch


def test_cifar100_reads_the_python_pickle_layout(tmp_path):
    batch = write_cifar(tmp_path, 'test', 5)
    for root in (tmp_path, tmp_path / 'cifar-100-python'):
        dataset = Cifar100Cls(str(root), split='test')
        assert len(dataset) == 5 and dataset.metainfo['classes'][7] == 'class7'
        item = dataset[3]
        assert item['inputs'].dtype == torch.uint8 and item['inputs'].shape == (3, 32, 32)
        assert item['data_samples'] == batch[b'fine_labels'][3]
        # channel-major rows: R(1024) G(1024) B(1024), each row-major 32x32
        c, y, x = 2, 5, 17
        assert int(item['inputs'][c, y, x]) == int(batch[b'data'][3][c * 1024 + y * 32 + x])


def test_cifar100_missing_split_names_the_expected_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match='cifar-100-python/{train,test,meta}'):
        Cifar100Cls(str(tmp_path), split='train')
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        Cifar100Cls(str(tmp_path), split='val')


def test_image_folder_sorted_classes_pixels_and_resize(tmp_path):
    for name, colour in (('zebra', (255, 0, 0)), ('ant', (0, 0, 255))):
        (tmp_path / name).mkdir()
        Image.new('RGB', (12, 10), colour).save(tmp_path / name / 'a.png')
    (tmp_path / 'ant' / 'notes.txt').write_text('not an image')
    dataset = ImageFolderCls(str(tmp_path))
    assert dataset.metainfo['classes'] == ('ant', 'zebra') and len(dataset) == 2
    ant, zebra = dataset[0], dataset[1]
    assert ant['data_samples'] == 0 and zebra['data_samples'] == 1
    assert ant['inputs'].shape == (3, 10, 12) and ant['inputs'].dtype == torch.uint8
    assert ant['inputs'][:, 4, 4].tolist() == [0, 0, 255]
    assert ImageFolderCls(str(tmp_path), size=8)[1]['inputs'].shape == (3, 8, 8)
    with pytest.raises(FileNotFoundError, match='no images'):
        ImageFolderCls(str(tmp_path / 'ant'))


def test_crop_flip_is_a_padded_crop_or_its_mirror():
    image = torch.arange(3 * 6 * 6, dtype=torch.uint8).view(3, 6, 6)
    padded = torch.nn.functional.pad(image, (2, 2, 2, 2))
    candidates = [c for top in range(5) for left in range(5)
                  for c in (padded[:, top:top + 6, left:left + 6],
                            padded[:, top:top + 6, left:left + 6].flip(-1))]
    torch.manual_seed(0)
    seen = set()
    for _ in range(20):
        out = crop_flip(image, 2)
        index = next(i for i, c in enumerate(candidates) if torch.equal(c, out))
        seen.add(index)
    assert len(seen) > 5


def test_shapes_dataset_is_deterministic(tmp_path):
    first = make_shapes_dataset(str(tmp_path / 'a'), num_classes=3, per_class=(2, 1), size=24)
    make_shapes_dataset(str(tmp_path / 'b'), num_classes=3, per_class=(2, 1), size=24)
    make_shapes_dataset(str(tmp_path / 'c'), num_classes=3, per_class=(2, 1), size=24, seed=1)
    assert first == {'train': str(tmp_path / 'a' / 'train'), 'val': str(tmp_path / 'a' / 'val')}
    files = sorted(os.path.relpath(os.path.join(d, f), tmp_path / 'a')
                   for d, _, fs in os.walk(tmp_path / 'a') for f in fs)
    assert len(files) == 9 and files[0] == os.path.join('train', 'solid_circle', '00000.png')
    assert all(filecmp.cmp(tmp_path / 'a' / f, tmp_path / 'b' / f, shallow=False) for f in files)
    assert not any(filecmp.cmp(tmp_path / 'a' / f, tmp_path / 'c' / f, shallow=False)
                   for f in files)
    dataset = ImageFolderCls(first['train'])
    assert dataset.metainfo['classes'] == ('solid_circle', 'solid_square', 'solid_triangle')
    assert dataset[0]['inputs'].shape == (3, 24, 24)


def test_shapes_dataset_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='num_classes must be in 2..24'):
        make_shapes_dataset(str(tmp_path), num_classes=30)
    with pytest.raises(ValueError, match='does not match splits'):
        make_shapes_dataset(str(tmp_path), per_class=(1, 2, 3))


def test_accuracy_topk_against_a_direct_count():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    labels = [1, 1, 0, 2]
    metric = Accuracy(topk=(1, 2))
    metric.process({}, [dict(pred_score=s, gt_label=torch.tensor(y))
                        for s, y in zip(scores, labels)])
    top1 = sum(int(s.argmax()) == y for s, y in zip(scores, labels)) / 4
    top2 = sum(y in s.argsort(descending=True)[:2].tolist() for s, y in zip(scores, labels)) / 4
    assert metric.evaluate(4) == {'cls/top1': 100 * top1, 'cls/top2': 100 * top2}


def test_runner_trains_distills_and_evaluates_teacher_and_student(tmp_path):
    from mmengine.runner import Runner
    folders = make_shapes_dataset(str(tmp_path / 'data'), num_classes=3, per_class=(4, 2), size=32)
    loader = dict(batch_size=4, num_workers=0, collate_fn=dict(type='default_collate'),
                  sampler=dict(type='DefaultSampler', shuffle=False))
    student = dict(type='TimmClassifier', model_name='test_resnet', num_classes=3)
    teacher = dict(type='TimmClassifier', model_name='test_vit', num_classes=3, img_size=64)
    model = dict(type='kdzoo.DistillClassifier', student=student, distill_cfg=dict(
        teacher=dict(config=teacher),
        losses=[dict(student='logits', teacher='logits', loss=dict(type='KDLoss'))]))
    settings = dict(
        model=model, work_dir=str(tmp_path / 'work'), default_scope='kdzoo',
        train_dataloader=dict(loader, dataset=dict(type='ImageFolderCls', root=folders['train'],
                                                   augment=True)),
        val_dataloader=dict(loader, dataset=dict(type='ImageFolderCls', root=folders['val'])),
        val_evaluator=dict(type='Accuracy'),
        train_cfg=dict(by_epoch=False, max_iters=2, val_interval=2), val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        custom_hooks=[dict(type='TeacherCheckHook')],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False)))
    with pytest.warns(UserWarning, match='no checkpoint'):
        runner = Runner(**settings)
    runner.train()
    teacher_top1 = runner.message_hub.get_info('teacher_check/cls/top1')
    assert teacher_top1 is not None and 0 <= teacher_top1 <= 100
    metrics = runner.val_loop.run()
    assert set(metrics) == {'cls/top1'} and 0 <= metrics['cls/top1'] <= 100
    saved = torch.load(tmp_path / 'work' / 'iter_2.pth', weights_only=False)['state_dict']
    exported = student_state_dict(dict(default_scope='kdzoo'), saved)
    plain = timm.create_model('test_resnet', num_classes=3, pretrained=False)
    plain.load_state_dict(exported)  # strict: exactly the timm model's keys
    assert torch.equal(exported['fc.weight'], runner.model.student.model.fc.weight)


def test_image_folder_cache_decodes_each_file_once(tmp_path, monkeypatch):
    folders = make_shapes_dataset(str(tmp_path), num_classes=2, per_class=(3, 1))
    plain = ImageFolderCls(folders['train'])
    cached = ImageFolderCls(folders['train'], cache=True)
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, 'open',
                        lambda path, *a, **k: opened.append(path) or real_open(path, *a, **k))
    for _ in range(2):
        for i in range(len(cached)):
            assert torch.equal(cached[i]['inputs'], plain[i]['inputs'])
    assert len(opened) == 2 * len(plain) + len(cached)


def test_an_empty_class_folder_is_named(tmp_path):
    for name in ('ant', 'bee', 'cat'):
        (tmp_path / name).mkdir()
    for name in ('ant', 'cat'):
        Image.new('RGB', (4, 4)).save(tmp_path / name / '0.png')
    with pytest.raises(FileNotFoundError, match='^' + re.escape(
            f"ImageFolderCls: class folders without images (.png, .jpg, .jpeg, .bmp, .webp): "
            f"['{tmp_path}/bee']; each still takes a label and shifts the labels of the classes "
            'after it. Add their images or remove the folders.') + '$'):
        ImageFolderCls(str(tmp_path))


@pytest.mark.parametrize('protocol', [2, 4, 5])
def test_cifar100_reads_the_release_pickled_with_any_protocol(tmp_path, protocol):
    """The restricted unpickler builds what the release holds (dicts, bytes, lists, numpy
    arrays) whatever the pickle protocol."""
    batch = write_cifar(tmp_path, 'train', 3, protocol=protocol)
    dataset = Cifar100Cls(str(tmp_path), split='train')
    assert torch.equal(dataset[2]['inputs'].flatten(), torch.from_numpy(batch[b'data'][2]))


def test_cifar100_reads_the_numpy_1_names_of_the_release(tmp_path):
    """The release was pickled by Python 2 with numpy 1: its arrays name numpy.core.multiarray."""
    batch = write_cifar(tmp_path, 'train', 3, protocol=2)
    path = tmp_path / 'cifar-100-python' / 'train'
    path.write_bytes(path.read_bytes().replace(b'numpy._core.', b'numpy.core.'))
    assert b'numpy.core.multiarray' in path.read_bytes()
    dataset = Cifar100Cls(str(tmp_path), split='train')
    assert torch.equal(dataset[1]['inputs'].flatten(), torch.from_numpy(batch[b'data'][1]))


class Payload:
    """What a crafted file would run when unpickled: here, create a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), 'w')


@pytest.mark.parametrize('split', ['train', 'meta'])
def test_a_crafted_cifar_file_is_refused_without_running(tmp_path, split):
    write_cifar(tmp_path, 'train', 3)
    marker = tmp_path / 'ran'
    key = b'fine_label_names' if split == 'meta' else b'data'
    crafted = {key: Payload(marker)}
    path = tmp_path / 'cifar-100-python' / split
    path.write_bytes(pickle.dumps(crafted))
    with pytest.raises(ValueError, match='^' + re.escape(
            f'Cifar100Cls: {path} is not a file of the CIFAR-100 python release (io.open '
            'is not allowed: the CIFAR-100 files hold only containers and numpy arrays); it was '
            'refused without running it.')):
        Cifar100Cls(str(tmp_path), split='train')
    assert not marker.exists()


def write_class_folders(root, classes=('ant', 'bee', 'cat'), size=(8, 8)):
    """One ``size`` (height, width) image ``0.png`` per class folder under ``root``."""
    for name in classes:
        (root / name).mkdir(parents=True)
        Image.new('RGB', size[::-1], (10, 20, 30)).save(root / name / '0.png')


def test_hidden_folders_and_files_are_skipped(tmp_path):
    # A notebook's checkpoint folder (with an image in it) sorted first and took label 0: the
    # ten classes became eleven and training ended in `IndexError: Target 10 is out of bounds`.
    write_class_folders(tmp_path)
    (tmp_path / '.ipynb_checkpoints').mkdir()
    Image.new('RGB', (8, 8)).save(tmp_path / '.ipynb_checkpoints' / '0.png')
    (tmp_path / 'bee' / '._0.png').write_bytes(b'\x00\x05\x16\x07 macOS resource fork')
    dataset = ImageFolderCls(str(tmp_path))
    assert dataset.classes == ('ant', 'bee', 'cat')
    assert dataset.samples == [(str(tmp_path / name / '0.png'), label)
                               for label, name in enumerate(('ant', 'bee', 'cat'))]
    assert [dataset[i]['data_samples'] for i in range(3)] == [0, 1, 2]


def test_a_fifo_folder_or_broken_link_named_like_an_image_is_skipped(tmp_path):
    import signal

    def too_long(signum, frame):
        raise TimeoutError('ImageFolderCls waited on the FIFO')
    write_class_folders(tmp_path)
    os.mkfifo(tmp_path / 'bee' / '1.png')  # opening it waits for a writer forever
    (tmp_path / 'bee' / '2.png').mkdir()
    (tmp_path / 'bee' / '3.png').symlink_to(tmp_path / 'gone.png')
    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(10)
    try:
        with pytest.warns(UserWarning, match=re.escape(
                'ImageFolderCls: skipped 3 entries with an image name that are not regular files '
                f"(FIFO, socket, device, folder or broken link): ['{tmp_path}/bee/1.png', "
                f"'{tmp_path}/bee/2.png', '{tmp_path}/bee/3.png']")):
            dataset = ImageFolderCls(str(tmp_path))
        items = [dataset[i] for i in range(len(dataset))]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert [item['data_samples'] for item in items] == [0, 1, 2]


@pytest.mark.parametrize('damage', ['truncated', 'not an image'])
def test_an_unreadable_image_names_the_file(tmp_path, damage):
    write_class_folders(tmp_path)
    path = tmp_path / 'bee' / '1.png'
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2] if damage == 'truncated' else b'not a png')
    try:
        dataset = ImageFolderCls(str(tmp_path))  # a header that cannot be read fails here
        dataset[2]
    except OSError as err:
        text = str(err)
    else:
        raise AssertionError('no error for a damaged image')
    assert re.fullmatch(re.escape(f'ImageFolderCls: cannot read the image {path} (') + '.+'
                        + re.escape('); it is truncated, not an image or not readable. Replace '
                                    'or remove the file.'), text), text


def test_an_image_of_another_size_without_size_is_named(tmp_path):
    write_class_folders(tmp_path)
    Image.new('RGB', (8, 6)).save(tmp_path / 'bee' / '1.png')  # 6 high, 8 wide
    dataset = ImageFolderCls(str(tmp_path))
    dataset[0], dataset[1]
    with pytest.raises(ValueError, match='^' + re.escape(
            f"ImageFolderCls: the image {tmp_path}/bee/1.png is 6x8 (height x width), but "
            f"{tmp_path}/ant/0.png, the first image of the set, is 8x8; images are batched "
            'together, so they need one size. Set size=(8, 8) (or the size the model expects) in '
            "the dataset, e.g. dataset=dict(type='ImageFolderCls', ..., size=(8, 8)), to resize "
            'every image when loading.') + '$'):
        dataset[2]
    # With size (resized when loading) or a transform (it decides the size) any size loads.
    assert ImageFolderCls(str(tmp_path), size=8)[2]['inputs'].shape == (3, 8, 8)
    crop = ImageFolderCls(str(tmp_path), transform=lambda image: image[:, :4, :4])
    assert crop[2]['inputs'].shape == (3, 4, 4)


def test_a_16_bit_greyscale_image_is_scaled_not_clipped(tmp_path):
    from PIL import Image

    from kdzoo.adapters.cls.data import read_rgb
    path = str(tmp_path / 'grey16.png')
    Image.fromarray(np.full((4, 4), 32896, dtype=np.uint16)).save(path)  # 128 * 257
    assert Image.open(path).mode.startswith('I')
    assert np.asarray(read_rgb(path)).tolist() == [[[128] * 3] * 4] * 4
