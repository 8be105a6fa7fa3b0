"""The README's config example is a working config: written to a file as printed, it builds and
runs one distillation batch (``kdzoo train CONFIG --dry-run``) from the quick start's teacher."""
import os
import re

from kdzoo.commands.train import main as train
from kdzoo.toydata import make_shapes_dataset

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'README.md')


def readme_config():
    """The one ```python block of the README."""
    blocks = re.findall(r'```python\n(.*?)```', open(README).read(), re.S)
    assert len(blocks) == 1, len(blocks)
    return blocks[0]


def test_the_readme_config_runs_a_distillation_batch(tmp_path, capsys):
    data = make_shapes_dataset(tmp_path / 'data', num_classes=10, per_class=(2, 1))
    options = [f'train_dataloader.dataset.root={data["train"]}',
               f'val_dataloader.dataset.root={data["val"]}',
               f'test_dataloader.dataset.root={data["val"]}', 'train_dataloader.batch_size=8']
    train(['kdzoo::quickstart/teacher.py', '--work-dir', str(tmp_path / 'teacher'),
           '--cfg-options', *options, 'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
           'default_hooks.checkpoint.interval=2'])
    config = tmp_path / 'my_kd.py'
    config.write_text(readme_config())
    capsys.readouterr()
    train([str(config), '--work-dir', str(tmp_path / 'kd'), '--dry-run', '--cfg-options',
           *options, f'distill_cfg.teacher.checkpoint={tmp_path / "teacher" / "iter_2.pth"}'])
    out = capsys.readouterr().out
    assert 'distill.loss_kd_0 = ' in out, out[-2000:]
