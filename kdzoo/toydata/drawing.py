"""Drawing primitives shared by the generated data sets (numpy and PIL only).

- :func:`shape_polygons` / :func:`shape_mask`: one of :data:`SHAPES` (circle, square, triangle,
  cross, ring, star) at a centre, circumradius and rotation, as polygons or as a PIL ``'L'`` mask
  (255 inside, 0 outside and in a ring's hole). The one shape mask of kdzoo: the cls, seg and det
  sets all draw with it.
- :func:`pattern_mask`: one of :data:`PATTERNS` (solid, stripes, checker, dots) as a boolean map.
- :func:`distinct_colour`: a random colour far enough from another one.

Nothing here draws at random by itself: the random choices come from the ``numpy`` generator the
caller passes (:func:`distinct_colour`) or from the arguments, so a set is as deterministic as
its seeds.
"""
import math

import numpy as np

SHAPES = ('circle', 'square', 'triangle', 'cross', 'ring', 'star')
PATTERNS = ('solid', 'stripes', 'checker', 'dots')


def shape_polygons(shape, cx, cy, radius, angle):
    """The shape as ``(outer polygon, hole polygon or None)`` in pixel coordinates."""
    def ngon(points, r=radius, rotate=angle):
        return [(cx + rr * r * math.cos(a + rotate), cy + rr * r * math.sin(a + rotate))
                for a, rr in points]
    circle = [(2 * math.pi * k / 48, 1.0) for k in range(48)]
    if shape == 'circle':
        return ngon(circle), None
    if shape == 'ring':
        return ngon(circle), ngon(circle, radius * 0.55)
    if shape == 'square':
        return ngon([(math.pi / 4 + k * math.pi / 2, 1.0) for k in range(4)]), None
    if shape == 'triangle':
        return ngon([(-math.pi / 2 + k * 2 * math.pi / 3, 1.0) for k in range(3)]), None
    if shape == 'star':
        return ngon([(-math.pi / 2 + k * math.pi / 5, 1.0 if k % 2 == 0 else 0.45)
                     for k in range(10)]), None
    if shape == 'cross':  # a plus sign with arms of half-width 0.3
        corners = [(0.3, 1), (0.3, 0.3), (1, 0.3), (1, -0.3), (0.3, -0.3), (0.3, -1),
                   (-0.3, -1), (-0.3, -0.3), (-1, -0.3), (-1, 0.3), (-0.3, 0.3), (-0.3, 1)]
        return ngon([(math.atan2(y, x), math.hypot(x, y)) for x, y in corners]), None
    raise ValueError(f'unknown shape {shape!r}; choose from {SHAPES}')


def pattern_mask(pattern, size, period, angle):
    """Boolean ``(size, size)`` map: True where the pattern shows its second colour."""
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    a = (u * math.cos(angle) + v * math.sin(angle)) / period
    b = (-u * math.sin(angle) + v * math.cos(angle)) / period
    if pattern == 'solid':
        return np.zeros((size, size), bool)
    if pattern == 'stripes':
        return (a % 1) < 0.5
    if pattern == 'checker':
        return (np.floor(a) + np.floor(b)) % 2 == 1
    if pattern == 'dots':
        return np.hypot(a - np.round(a), b - np.round(b)) < 0.3
    raise ValueError(f'unknown pattern {pattern!r}; choose from {PATTERNS}')


def distinct_colour(rng, other, min_distance=120):
    """A random RGB colour at least ``min_distance`` away from ``other``."""
    while True:
        colour = rng.integers(0, 256, 3)
        if np.linalg.norm(colour - other) >= min_distance:
            return colour


def shape_mask(shape, size, cx, cy, radius, angle):
    """A ``size`` x ``size`` PIL 'L' mask of ``shape``: 255 inside, 0 outside (and in a ring's
    hole)."""
    from PIL import Image, ImageDraw
    outer, hole = shape_polygons(shape, cx, cy, radius, angle)
    mask = Image.new('L', (size, size), 0)
    draw = ImageDraw.Draw(mask)
    draw.polygon(outer, fill=255)
    if hole is not None:
        draw.polygon(hole, fill=0)
    return mask
