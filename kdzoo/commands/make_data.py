"""Write one of kdzoo's generated data sets (:mod:`kdzoo.toydata`; deterministic; no download).

    kdzoo make-data cls|seg|det ROOT [--train N] [--val N] [--seed S]

(``python tools/make_toy_data.py`` in a checkout is the same command.)

cls: ImageFolder PNGs of shapes/textures (ROOT/{train,val}/<class>/*.png, N images per class);
seg: mmseg's img_dir/ann_dir PNG pairs (N images per split);
det: COCO json + PNG images with some empty images (N images per split).
"""
import argparse

from kdzoo.toydata import make_det_dataset, make_seg_dataset, make_shapes_dataset

# task -> (writer, the argument its counts go to, default (train, val) counts)
SETS = {
    'cls': (make_shapes_dataset, 'per_class', (200, 50)),
    'seg': (make_seg_dataset, 'num_images', (40, 10)),
    'det': (make_det_dataset, 'num_images', (400, 100)),
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog='kdzoo make-data',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('task', choices=list(SETS))
    parser.add_argument('root')
    parser.add_argument('--train', type=int, help='training images (per class for cls)')
    parser.add_argument('--val', type=int, help='validation images (per class for cls)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    make, key, defaults = SETS[args.task]
    counts = (args.train or defaults[0], args.val or defaults[1])
    make(args.root, seed=args.seed, **{key: counts})
    print(f'wrote the generated {args.task} set to {args.root} '
          f'({counts[0]} train / {counts[1]} val)')
