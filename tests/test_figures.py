"""The picture matches the numbers: read the heatmap's colours back and invert the colormap."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.image import imread

from filters.blocks.labels import LABELS
from filters.figures.heatmap import WEIGHT_RANGE
from filters.figures.render import render
from filters.kinds import KINDS
from filters.kinds.attention import AttentionOptions
from filters.kinds.posenc import PosencOptions

ATTENTION, POSENC = KINDS["attention"], KINDS["posenc"]


@pytest.mark.parametrize("spec", [
    AttentionOptions(sentence="el gato se sentó en la alfombra"),
    AttentionOptions(sentence="la atención conecta cada token con los demás", seed=3, causal=True, cmap="magma"),
], ids=["default", "causal-magma"])
def test_heatmap_colours_are_the_weights(tmp_path, spec):
    data = ATTENTION.compute(spec)
    weights = np.array(data["weights"])
    png = tmp_path / "heat.png"
    fig = render(ATTENTION, data, spec, png)
    ax = fig.axes[0]
    pixels = imread(png)[..., :3]  # (rows, cols, RGB) floats in [0, 1]
    scale = pixels.shape[1] / (fig.get_figwidth() * fig.dpi)  # saved dpi / figure dpi
    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]

    lut = matplotlib.colormaps[spec.cmap](np.linspace(0, 1, 256))[:, :3]
    lo, hi = WEIGHT_RANGE
    L, S = weights.shape
    for i in range(L):
        for j in range(S):
            x, y = ax.transData.transform((j - 0.36, i - 0.36))  # a corner of the cell, away from its number
            assert not any(b.contains(x, y) for b in boxes), "the sample point must not touch a printed number"
            row, col = int(round(pixels.shape[0] - y * scale)), int(round(x * scale))
            colour = pixels[row, col]
            index = np.argmin(((lut - colour) ** 2).sum(axis=1))
            shown = lo + (hi - lo) * index / 255
            assert abs(shown - weights[i, j]) <= 2 / 255 * (hi - lo), (i, j, shown, weights[i, j])
    # every cell prints its own weight at the chosen precision
    assert [t.get_text() for t in ax.texts] == [f"{w:.{spec.precision}f}" for w in weights.ravel()]


def test_heatmap_labels_in_the_decks_language(tmp_path):
    spec = AttentionOptions(sentence="el gato se sentó en la alfombra")
    data = ATTENTION.compute(spec)
    fig = render(ATTENTION, data, spec, tmp_path / "a.png", lang="es")
    ax, colorbar = fig.axes
    assert ax.get_ylabel() == LABELS["es"]["query"] and ax.get_xlabel() == LABELS["es"]["key"]
    assert colorbar.get_ylabel() == "peso de atención"
    assert [t.get_text() for t in ax.get_yticklabels()] == data["tokens"]
    assert [t.get_text() for t in ax.get_xticklabels()] == data["tokens"]


def test_posenc_figure_has_heatmap_and_curves(tmp_path):
    spec = PosencOptions(num_positions=30, d_model=16, dims=(0, 1, 6))
    data = POSENC.compute(spec)
    fig = render(POSENC, data, spec, tmp_path / "p.png", lang="es")
    heat, curves, _colorbar = fig.axes
    assert heat.get_xlabel() == "dimensión" and heat.get_ylabel() == "posición"
    assert len(curves.lines) == 3
    np.testing.assert_allclose(curves.lines[2].get_ydata(), np.array(data["encoding"])[:, 6])
    json.dumps(data)  # the data is JSON-ready
