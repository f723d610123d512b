"""yolo_gd.datasets.shapes_draw: masks, placement, colours and one rendered image, exact on tiny fixed-seed cases."""

from __future__ import annotations

import numpy as np

from yolo_gd.datasets import shapes_draw as D

KW = dict(kinds=["rectangle", "circle"], max_objects=3, min_size=0.3, max_size=0.5, occlusion=False, noise=False)


def test_rasterise_fills_the_polygon_including_its_edges():
    mask = D._rasterise(np.array([[1.0, 1.0], [4.0, 1.0], [4.0, 4.0], [1.0, 4.0]]), 6)
    expected = np.zeros((6, 6), np.uint8)
    expected[1:5, 1:5] = 1
    assert mask.dtype == np.uint8 and np.array_equal(mask, expected)


def test_place_shrinks_an_outline_wider_than_the_image_to_fit():
    pts = D._place(np.array([[-10.0, -10.0], [10.0, 10.0]]), 8, np.random.default_rng(0))
    assert np.allclose(pts, [[0.0, 0.0], [7.0, 7.0]])  # shrunk to 7 px, so the only fitting offset is 3.5


def test_circle_outline_has_64_vertices_on_its_radius():
    pts = D._outline("circle", 10.0, np.random.default_rng(0))
    assert pts.shape == (64, 2) and np.allclose(np.linalg.norm(pts, axis=1), 5.0)


def test_background_without_noise_is_one_flat_colour():
    bg = D._background(np.random.default_rng(0), 4, noise=False)
    assert bg.shape == (4, 4, 3) and bg.dtype == np.float32
    assert np.array_equal(bg, np.broadcast_to(bg[0, 0], bg.shape))


def test_pick_colour_clears_contrast_and_separation_margins():
    under, other = np.array([0.0, 0.0, 0.0]), np.array([255.0, 255.0, 255.0])
    c = D._pick_colour(np.random.default_rng(0), under, [other])
    assert np.linalg.norm(c - under) >= D._SHAPE_CONTRAST and np.linalg.norm(c - other) >= D._SHAPE_SEPARATION


def test_pick_colour_keeps_the_best_candidate_when_none_clears(monkeypatch):
    monkeypatch.setattr(D, "_SHAPE_CONTRAST", 1000.0)  # beyond any RGB distance (441)
    rng = np.random.default_rng(0)
    candidates = [rng.integers(0, 256, 3).astype(np.float32) for _ in range(D._COLOUR_TRIES)]
    best = max(candidates, key=lambda c: float(np.linalg.norm(c - 128.0)))
    assert np.array_equal(D._pick_colour(np.random.default_rng(0), np.full(3, 128.0), []), best)


def test_render_image_is_a_pure_function_of_the_generator():
    a, boxes_a = D.render_image(np.random.default_rng(1), 32, **KW)
    b, boxes_b = D.render_image(np.random.default_rng(1), 32, **KW)
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and boxes_a == boxes_b == [(1, 8, 16, 21, 29), (0, 17, 6, 26, 18)]


def test_render_image_boxes_are_the_tight_boxes_of_the_painted_pixels():
    image, boxes = D.render_image(np.random.default_rng(1), 32, **KW)
    background = image[0, 0]
    for cls, x0, y0, x1, y1 in boxes:
        colour = image[(y0 + y1) // 2, (x0 + x1) // 2]
        assert not np.array_equal(colour, background)
        ys, xs = np.nonzero((image == colour).all(axis=2))
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)
