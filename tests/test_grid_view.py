"""The grid view: perspective warp of the located grid, and the model-folder setting that asks for it."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vlm_sudoku.runtime.grid_view import CONFIG_KEY, ZOOMS, GridView, load_grid_view, perspective_coefficients
from vlm_sudoku.runtime.model_config import ModelFolderError
from vlm_sudoku.runtime.pipeline import Pipeline


def _apply(coeffs, x: float, y: float) -> tuple[float, float]:
    a, b, c, d, e, f, g, h = coeffs
    w = g * x + h * y + 1
    return (a * x + b * y + c) / w, (d * x + e * y + f) / w


def test_coefficients_map_each_corner_exactly() -> None:
    dst = ((40, 40), (408, 40), (408, 408), (40, 408))
    src = ((103.5, 61.0), (560.2, 80.7), (571.0, 455.5), (90.1, 470.3))
    coeffs = perspective_coefficients(dst, src)
    for d, s in zip(dst, src):
        assert np.allclose(_apply(coeffs, *d), s, atol=1e-6)


def test_degenerate_corners_are_an_error() -> None:
    with pytest.raises(ValueError, match="degenerate"):
        perspective_coefficients(GridView().target, ((0, 0), (0, 0), (0, 0), (0, 0)))


def test_warp_puts_the_grid_border_at_the_margin() -> None:
    """A dark quadrilateral outline drawn in a picture lands on the view's margin square."""
    image = Image.new("RGB", (640, 480), "white")
    quad = ((120, 70), (520, 90), (540, 430), (100, 410))
    ImageDraw.Draw(image).line([*quad, quad[0]], fill="black", width=5)
    view = GridView(size=448, margin=40)
    out = np.asarray(view.warp(image, quad).convert("L"))
    assert out.shape == (448, 448)
    for y in (100, 224, 350):  # the left and right border lines at x = 40 and x = 408
        assert out[y, 37:44].min() < 80 and out[y, 404:412].min() < 80
        assert out[y, 150:300].min() > 200  # nothing drawn inside
    assert out[40, 100:350].max() < 120 and out[408, 100:350].max() < 120


@pytest.mark.parametrize("zoom", ZOOMS)
def test_a_zoomed_view_frames_the_grid_tighter_about_its_centre(zoom: float) -> None:
    """The corners scaled by ``zoom`` about their centre: the border moves out from the margin square by the
    same share on every side (184 px from the centre at zoom 1, 184 / zoom at ``zoom``)."""
    image = Image.new("RGB", (640, 480), "white")
    square = ((120, 40), (520, 40), (520, 440), (120, 440))  # a square, so the warp is a plain scaling
    ImageDraw.Draw(image).line([*square, square[0]], fill="black", width=3)
    view = GridView(size=448, margin=40)
    out = np.asarray(view.zoomed(image, square, zoom).convert("L"))
    edge = round(224 - 184 / zoom)
    for y in (150, 224, 300):
        assert out[y, edge - 2:edge + 3].min() < 100 and out[y, 448 - edge - 3:448 - edge + 2].min() < 100
        assert out[y, edge + 6:448 - edge - 6].min() > 200
    assert np.array_equal(np.asarray(view.zoomed(image, square, 1.0)), np.asarray(view.warp(image, square)))


def test_setting_is_read_from_the_preprocessor_config(tmp_path) -> None:
    raw = {"min_pixels": 3136, "max_pixels": 200704}
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(raw))
    assert load_grid_view(tmp_path) is None  # a plain Qwen2-VL folder sees whole pictures
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({**raw, CONFIG_KEY: {"size": 448, "margin": 40}}))
    assert load_grid_view(tmp_path) == GridView(448, 40)
    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps({**raw, CONFIG_KEY: {"size": 448, "margin": 40, "context": 448}}))
    assert load_grid_view(tmp_path) == GridView(448, 40, 448)
    assert GridView(448, 40, 448).to_dict() == {"size": 448, "margin": 40, "context": 448}
    assert GridView(448, 40).to_dict() == {"size": 448, "margin": 40}  # folders without one stay as they were
    for bad in ({"size": 448}, {"size": "big", "margin": 4}, {"size": 448, "margin": 300},
                {"size": 448, "margin": 40, "context": 20}, {"size": 448, "margin": 40, "context": "all"}):
        (tmp_path / "preprocessor_config.json").write_text(json.dumps({**raw, CONFIG_KEY: bad}))
        with pytest.raises(ModelFolderError, match=CONFIG_KEY):
            load_grid_view(tmp_path)


def test_pipeline_reads_the_grid_view_when_the_model_asks(tmp_path, tiny_qwen2_vl_export) -> None:
    """An export whose processor config names a grid view gets the located, warped grid; the
    reading reports the corners, and the vision encoder sees the view's fixed size."""
    from vlm_sudoku.tools.render import sample

    export = tmp_path / "export"
    shutil.copytree(tiny_qwen2_vl_export, export)
    pre = json.loads((export / "preprocessor_config.json").read_text())
    pre[CONFIG_KEY] = {"size": 224, "margin": 20}
    (export / "preprocessor_config.json").write_text(json.dumps(pre))
    item = sample(3, sizes=(9,), styles=("newspaper",))
    pipe = Pipeline.load(export, provider="cpu", max_new_tokens=4)
    reading = pipe.read_image(item.image)
    assert reading.viewed is not None and reading.viewed.corners is not None
    found, truth = np.asarray(reading.viewed.corners), np.asarray(item.corners)
    assert np.abs(found - truth).max() < 0.04 * (truth[:, 0].max() - truth[:, 0].min())
    assert reading.image.resized == (224, 224)
    plain = Pipeline.load(tiny_qwen2_vl_export, provider="cpu", max_new_tokens=4).read_image(item.image)
    assert plain.viewed is None and plain.image.resized != (224, 224)


def test_context_view_is_the_whole_picture_shrunk_to_fit() -> None:
    picture = Image.new("RGB", (1280, 960), "white")
    assert GridView(448, 40).context_of(picture) is None
    assert GridView(448, 40, 448).context_of(picture).size == (448, 336)
    small = Image.new("RGB", (300, 200), "white")
    assert GridView(448, 40, 448).context_of(small).size == (300, 200)  # never enlarged


def test_pipeline_with_a_context_view_reads_both_images_as_transformers_does(tmp_path, tiny_qwen2_vl_dir,
                                                                              tiny_qwen2_vl_export) -> None:
    """A model trained with "context" gets the whole picture and the grid view, in that order, in one shared
    prefix: the ONNX runtime's answers equal transformers' generate on the same two-image prompts."""
    from vlm_sudoku.export.torch_backend import TorchPipeline
    from vlm_sudoku.tools.render import sample

    setting = {"size": 224, "margin": 20, "context": 168}
    folders = {}
    for name, src in (("export", tiny_qwen2_vl_export), ("hf", tiny_qwen2_vl_dir)):
        folders[name] = tmp_path / name
        shutil.copytree(src, folders[name])
        pre = json.loads((folders[name] / "preprocessor_config.json").read_text())
        pre[CONFIG_KEY] = setting
        (folders[name] / "preprocessor_config.json").write_text(json.dumps(pre))
    item = sample(4, sizes=(9,), styles=("newspaper",))
    pipe = Pipeline.load(folders["export"], provider="cpu", max_new_tokens=12)
    reading = pipe.read_image(item.image)
    assert reading.image.resized == (224, 224) and reading.context is not None
    w, h = item.image.size
    assert max(reading.viewed.context.size) == 168 and reading.viewed.context.size[0] == round(w * 168 / max(w, h))
    one_image = Pipeline.load(tiny_qwen2_vl_export, provider="cpu", max_new_tokens=12).read_image(item.image)
    assert reading.prefix_tokens == one_image.prefix_tokens + reading.context.num_tokens + 2 + (
        reading.image.num_tokens - one_image.image.num_tokens)
    unshared = Pipeline.load(folders["export"], provider="cpu", max_new_tokens=12, share_prefix=False)
    torch_pipe = TorchPipeline(folders["hf"], device="cpu", max_new_tokens=12)
    answers = reading.texts()
    assert unshared.read(item.image) == answers
    assert torch_pipe.read(item.image) == answers
