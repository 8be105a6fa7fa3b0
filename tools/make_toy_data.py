"""Write one of kdzoo's generated data sets (:mod:`kdzoo.toydata`; deterministic; no download).

    python tools/make_toy_data.py cls|seg|det ROOT [--train N] [--val N] [--seed S]

cls: ImageFolder PNGs of shapes/textures (ROOT/{train,val}/<class>/*.png, N images per class);
seg: mmseg's img_dir/ann_dir PNG pairs (N images per split);
det: COCO json + PNG images with some empty images (N images per split).
"""
import argparse


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('task', choices=['cls', 'seg', 'det'])
    parser.add_argument('root')
    parser.add_argument('--train', type=int, help='training images (per class for cls)')
    parser.add_argument('--val', type=int, help='validation images (per class for cls)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.task == 'cls':
        from kdzoo.toydata import make_shapes_dataset as make
        counts, key = (args.train or 200, args.val or 50), 'per_class'
    elif args.task == 'seg':
        from kdzoo.toydata import make_seg_dataset as make
        counts, key = (args.train or 40, args.val or 10), 'num_images'
    else:
        from kdzoo.toydata import make_det_dataset as make
        counts, key = (args.train or 400, args.val or 100), 'num_images'
    make(args.root, seed=args.seed, **{key: counts})
    print(f'wrote the generated {args.task} set to {args.root} '
          f'({counts[0]} train / {counts[1]} val)')


if __name__ == '__main__':
    main()
