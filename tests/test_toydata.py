"""kdzoo.toydata: the generated sets are written with numpy and PIL alone (no OpenMMLab package,
no timm), and the one shape mask of kdzoo.toydata.drawing draws every shape."""
import math
import subprocess
import sys

import numpy as np
import pytest

from kdzoo.toydata.drawing import SHAPES, shape_mask


def test_every_set_is_written_without_openmmlab_or_timm(tmp_path):
    """Write one tiny set of each task with mmcv, mmdet, mmseg, timm and cv2 made unimportable."""
    code = f'''
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('mmcv', 'mmdet', 'mmseg', 'timm', 'cv2'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
from kdzoo.toydata import make_det_dataset, make_seg_dataset, make_shapes_dataset
make_shapes_dataset({str(tmp_path / 'cls')!r}, num_classes=2, per_class=1, size=16)
make_seg_dataset({str(tmp_path / 'seg')!r}, num_images=1, size=16)
make_det_dataset({str(tmp_path / 'det')!r}, num_images=(1, 1), size=32)
print('ok')
'''
    out = subprocess.run([sys.executable, '-c', code], cwd='/', capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == 'ok', out.stderr


@pytest.mark.parametrize('shape', SHAPES)
def test_shape_mask_stays_within_its_circumcircle(shape):
    """Every shape reaches its circumradius and no further (a cross's corners: 1.044 r)."""
    mask = np.asarray(shape_mask(shape, 64, 32, 32, 20, math.pi / 7)) > 127
    ys, xs = np.nonzero(mask)
    distance = np.hypot(xs + 0.5 - 32, ys + 0.5 - 32)
    assert 0 < mask.sum() < 64 * 64 and 18 <= distance.max() <= 20 * 1.05 + 1
    if shape == 'ring':
        assert not mask[32, 32]


def test_unknown_shape_is_refused():
    with pytest.raises(ValueError, match='unknown shape'):
        shape_mask('hexagon', 8, 4, 4, 3, 0)
