"""The fused GroupQueryAttention decoder (export/gqa_decoder.py) against transformers, on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from vlm_sudoku.export.gqa_decoder import (  # noqa: E402
    COS_CACHE, INPUTS_EMBEDS, LOGITS, NEXT_TOKEN, SEQLENS_K, SIN_CACHE, TOTAL_SEQUENCE_LENGTH, build_decoder,
)
from vlm_sudoku.runtime import io_names  # noqa: E402
from vlm_sudoku.runtime.cli import default_model_dir  # noqa: E402
from vlm_sudoku.runtime.model_config import ModelConfig  # noqa: E402
from vlm_sudoku.runtime.rope import decode_position_ids, get_rope_index, rope_rows  # noqa: E402

STEPS = 24


def _prompt(cfg: ModelConfig, grid: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of a prompt holding one image of ``grid`` patches, and its image grid."""
    merged = grid[0] * grid[1] * grid[2] // 4
    ids = [1, 2, 3, cfg.vision_start_token_id, *([cfg.image_token_id] * merged), cfg.vision_end_token_id, 4, 5, 6]
    return np.asarray([ids], dtype=np.int64), np.asarray([grid], dtype=np.int64)


def _reference(model, embeds: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """transformers' last-position logits for the whole sequence (no cache: an independent path)."""
    lm = model.model.language_model
    with torch.no_grad():
        hidden = lm(inputs_embeds=torch.from_numpy(embeds), position_ids=torch.from_numpy(positions)).last_hidden_state
        return model.lm_head(hidden[:, -1:]).numpy()


@pytest.mark.parametrize("which", ["tiny_qwen2_vl_dir", "tiny_qwen2_5_vl_dir", "default"])
def test_gqa_decoder_matches_transformers(which: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from transformers import AutoModelForImageTextToText

    folder = default_model_dir() / "hf" if which == "default" else request.getfixturevalue(which)
    cfg = ModelConfig.from_folder(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder, dtype=torch.float32).eval()
    session = ort.InferenceSession(str(build_decoder(folder, tmp_path / "decoder.onnx")),
                                   providers=["CPUExecutionProvider"])
    table = model.get_input_embeddings().weight.detach().numpy()

    ids, grid = _prompt(cfg, (1, 8, 8))
    positions, deltas = get_rope_index(cfg, ids, image_grid_thw=grid)
    rng = np.random.default_rng(0)
    embeds = table[ids[0]][None].copy()
    image = ids[0] == cfg.image_token_id
    embeds[0, image] = rng.normal(0, float(table.std()), (int(image.sum()), cfg.hidden_size))  # as if from vision
    embeds = embeds.astype(np.float32)

    past = {n: np.zeros((1, cfg.num_kv_heads, 0, cfg.head_dim), np.float32)
            for n in io_names.past_names(cfg.num_layers)}
    step_embeds, step_positions, length = embeds, positions, 0
    all_embeds, all_positions = embeds, positions
    tokens, reference = [], []
    for step in range(STEPS):
        total = length + step_embeds.shape[1]
        # Rows below ``length`` are never read (those keys were rotated when they were written): NaN proves it.
        cos, sin = (np.full((total + 5, cfg.head_dim // 2), np.nan, np.float32) for _ in range(2))
        cos[length:total], sin[length:total] = rope_rows(cfg, step_positions)
        feeds = {INPUTS_EMBEDS: step_embeds, COS_CACHE: cos, SIN_CACHE: sin, SEQLENS_K: np.array([total - 1], np.int32),
                 TOTAL_SEQUENCE_LENGTH: np.array(total, np.int32), **past}
        names = [LOGITS, NEXT_TOKEN] + io_names.present_names(cfg.num_layers)
        logits, next_token, *presents = session.run(names, feeds)
        expected = _reference(model, all_embeds, all_positions)
        if step == 0:
            assert np.abs(logits - expected).max() < 1e-3
        assert int(next_token[0, 0]) == int(logits[0, -1].argmax())
        tokens.append(int(next_token[0, 0]))
        reference.append(int(expected[0, -1].argmax()))
        past = dict(zip(io_names.past_names(cfg.num_layers), presents))
        length = total
        step_embeds = table[[tokens[-1]]][None].astype(np.float32)
        step_positions = decode_position_ids(deltas, length)
        all_embeds = np.concatenate([all_embeds, step_embeds], axis=1)
        all_positions = np.concatenate([all_positions, step_positions], axis=2)
    assert tokens == reference


@pytest.fixture(scope="module")
def fused_export(tmp_path_factory: pytest.TempPathFactory, tiny_qwen2_vl_dir: Path) -> Path:
    from vlm_sudoku.export.exporter import ExportOptions, export_model

    out = tmp_path_factory.mktemp("fused") / "export"
    export_model(tiny_qwen2_vl_dir, out, ExportOptions(fused_decoder=True, check_tokens=0))
    return out


@pytest.mark.parametrize("io_binding", [False, True])
def test_engine_decodes_the_same_with_either_decoder(fused_export: Path, io_binding: bool) -> None:
    """The runtime's two decoder graphs give the same greedy tokens: image prefix shared by both questions."""
    from PIL import Image

    from vlm_sudoku.runtime.engine import Engine

    from .engine_helpers import shared_prefix_tokens

    image = Image.fromarray(np.random.default_rng(5).integers(0, 255, (120, 150, 3), dtype=np.uint8))
    results = []
    for decoder in ("optimum", "fused"):
        engine = Engine(fused_export, provider="cpu", decoder=decoder, io_binding=io_binding)
        assert engine.fused == (decoder == "fused")
        results.append(shared_prefix_tokens(engine, image, 32))
    assert results[0] == results[1]
    assert Engine(fused_export, provider="cpu").fused  # "auto" prefers the fused graph


def test_asking_for_a_missing_fused_decoder_is_a_clear_error(tiny_qwen2_vl_export: Path) -> None:
    from vlm_sudoku.runtime.engine import Engine
    from vlm_sudoku.runtime.manifest import ManifestError

    assert not Engine(tiny_qwen2_vl_export, provider="cpu").fused
    with pytest.raises(ManifestError, match="--fused-decoder"):
        Engine(tiny_qwen2_vl_export, provider="cpu", decoder="fused")


def test_int4_fused_decoder_export_and_decode(tiny_qwen2_vl_dir: Path, tmp_path: Path) -> None:
    """--precision int4 quantizes the fused decoder's MatMuls (MatMulNBits); the engine decodes with it and
    reads the image with the float graphs."""
    import onnx
    from PIL import Image

    from vlm_sudoku.export.exporter import ExportOptions, export_model
    from vlm_sudoku.runtime.engine import Engine
    from vlm_sudoku.runtime.manifest import Manifest

    from .engine_helpers import shared_prefix_tokens

    with pytest.raises(ValueError, match="fused decoder only"):
        ExportOptions(precisions=("fp32", "int4"))
    with pytest.raises(ValueError, match="float precision"):
        ExportOptions(precisions=("int4",), fused_decoder=True)
    out = tmp_path / "export"
    export_model(tiny_qwen2_vl_dir, out, ExportOptions(precisions=("fp32", "int4"), fused_decoder=True, check_tokens=0))
    spec = Manifest.load(out).graph("decoder_gqa", "int4")
    assert spec.file == "onnx/decoder_gqa_q4.onnx"
    ops = {n.op_type for n in onnx.load(str(out / spec.file)).graph.node}
    assert "MatMulNBits" in ops and "MatMul" not in ops
    assert (out / spec.file).stat().st_size < (out / "onnx" / "decoder_gqa.onnx").stat().st_size / 3
    engine = Engine(out, provider="cpu", precision="int4")
    assert engine.fused and engine.precision == "int4"
    image = Image.fromarray(np.random.default_rng(2).integers(0, 255, (100, 100, 3), dtype=np.uint8))
    tokens = shared_prefix_tokens(engine, image, 16)
    assert [len(t) for t in tokens] == [16, 16]
    assert Engine(out, provider="cpu").precision != "int4"  # asked for, never the default


def test_int4_from_the_fp16_decoder(tiny_qwen2_vl_dir: Path, tmp_path: Path) -> None:
    """With fp16 in the export, int4 quantizes the fp16 fused decoder (the one GroupQueryAttention can run on
    CUDA); the engine then reads images with the fp16 graphs, and its logits are those of the int4 graph made
    from fp32 weights, up to fp16 rounding."""
    from PIL import Image

    from vlm_sudoku.export.exporter import ExportOptions, export_model
    from vlm_sudoku.runtime.engine import Engine
    from vlm_sudoku.runtime.prompts import QUESTIONS, prompt_ids

    image = Image.fromarray(np.random.default_rng(3).integers(0, 255, (100, 100, 3), dtype=np.uint8))
    logits = {}
    for precisions in (("fp32", "fp16", "int4"), ("fp32", "int4")):
        out = tmp_path / "-".join(precisions)
        export_model(tiny_qwen2_vl_dir, out, ExportOptions(precisions=precisions, fused_decoder=True, check_tokens=0))
        import onnx

        # onnxruntime before 1.32 refuses IR 14 (what onnx 1.23's helper writes by default)
        assert {onnx.load(str(f), load_external_data=False).ir_version for f in (out / "onnx").glob("*.onnx")} <= {8}
        engine = Engine(out, provider="cpu", precision="int4")
        half = "fp16" in precisions
        assert (engine.decoder.inputs["inputs_embeds"] == np.float16) == half
        assert (engine.embed.session.get_outputs()[0].type == "tensor(float16)") == half
        encoded = engine.encode_image(image)
        ids = prompt_ids(engine.tokenizer, QUESTIONS["digits"], [encoded.num_tokens])
        logits[half] = engine.prefill(ids, [encoded])[0]
        assert len(engine.generate(ids, images=[encoded], max_new_tokens=8).tokens) <= 8
    assert np.corrcoef(logits[True], logits[False])[0, 1] > 0.99  # (random weights: the argmax is a near-tie)


# -- the static KV cache: past and present bound to one preallocated buffer (GroupQueryAttention share-buffer) --


def _static_pair(export: Path, **static: object) -> tuple[object, object]:
    """(plain numpy-feed engine, static-cache engine) over the same fused export, stop tokens ignored."""
    from vlm_sudoku.runtime.engine import Engine

    plain = Engine(export, provider="cpu")
    static_engine = Engine(export, provider="cpu", io_binding=True, **static)
    assert plain._kv is None and static_engine._kv is not None
    for engine in (plain, static_engine):
        engine.stop_ids = frozenset()
    return plain, static_engine


@pytest.mark.parametrize("grow", [False, True])
def test_static_cache_decodes_as_the_plain_path(fused_export: Path, grow: bool) -> None:
    """Greedy tokens through the shared past/present buffer (CPU EP, IO binding) equal the plain path's, for two
    questions continued from one prefix and for single prompts. grow: the buffer first holds the prefix and a
    few positions more, so the first question grows it (copying the cached prefix over) before its prefill."""
    from PIL import Image

    from vlm_sudoku.runtime.engine import Engine
    from vlm_sudoku.runtime.prompts import QUESTIONS, shared_prompt

    from .engine_helpers import shared_prefix_tokens

    image = Image.fromarray(np.random.default_rng(11).integers(0, 255, (110, 140, 3), dtype=np.uint8))
    probe = Engine(fused_export, provider="cpu")
    encoded = probe.encode_image(image)
    prompt = shared_prompt(probe.tokenizer, [encoded.num_tokens])
    # room from the start for everything below (one binding), or for the prefix and 4 positions (a move)
    plain, static_engine = _static_pair(fused_export, max_length=len(prompt.prefix_ids) + (4 if grow else 400))
    assert shared_prefix_tokens(static_engine, image, 40) == shared_prefix_tokens(plain, image, 40)
    assert static_engine._graph_id == (2 if grow else 1)  # a new step binding (a new CUDA graph) per move
    for q in QUESTIONS:
        one = [e.generate(prompt.full(q), images=[encoded], max_new_tokens=24).tokens for e in (plain, static_engine)]
        assert one[0] == one[1], q
    if grow:  # a capacity the engine chose is rounded (max_length is taken exactly)
        assert static_engine._kv.capacity % static_engine._kv.ROUND == 0
    # each static decode step's host time is accounted: 2 x (40 - 1) + 2 x (24 - 1) steps after the prefills
    timed = static_engine.step_seconds
    assert timed.steps == 2 * 39 + len(QUESTIONS) * 23 and timed.decoder > 0
    assert set(timed.per_step_us()) == {"inputs", "embed", "decoder", "readback"}


def test_pipeline_sizes_the_static_cache_once(fused_export: Path) -> None:
    """The pipeline reserves the prefix and its longest answer before prefilling the prefix, so the buffers
    never move between the prefix and the answers (a move is a host copy and a new CUDA graph), and the
    answers are the plain path's."""
    from PIL import Image

    from vlm_sudoku.runtime.pipeline import Pipeline

    image = Image.fromarray(np.random.default_rng(5).integers(0, 255, (120, 150, 3), dtype=np.uint8))
    plain, static_engine = _static_pair(fused_export)
    answers = [Pipeline(e, max_new_tokens=30, check_reading=False).read_image(image).answers for e in (plain, static_engine)]
    assert {q: a.tokens for q, a in answers[0].items()} == {q: a.tokens for q, a in answers[1].items()}
    assert static_engine._graph_id == 1
    assert all(len(a.tokens) == 30 for a in answers[1].values())  # stop tokens ignored: each answer is full length


def test_the_further_grid_views_decode_on_the_static_cache_as_on_the_plain_path() -> None:
    """vlm-solve's default reading (the embedded model, three grid views) on the static cache the CUDA path uses:
    each further view is a prompt of its own from position 0, in the buffers the first view sized, so the
    answers are the plain path's and the step binding (a CUDA graph on a GPU) is never made again."""
    from vlm_sudoku.runtime.cli import default_model_dir
    from vlm_sudoku.runtime.engine import Engine
    from vlm_sudoku.runtime.image_io import load_image
    from vlm_sudoku.runtime.pipeline import Pipeline

    from .paths import ROOT

    image = load_image(ROOT / "examples" / "image162.jpg")
    plain = Engine(default_model_dir(), provider="cpu")
    static_engine = Engine(default_model_dir(), provider="cpu", io_binding=True)
    assert plain._kv is None and static_engine._kv is not None
    readings = [Pipeline(e, views=3).read_image(image) for e in (plain, static_engine)]
    digits = [[r.answers["digits"], *r.more_digits] for r in readings]
    assert len(digits[1]) == 3
    assert [g.tokens for g in digits[0]] == [g.tokens for g in digits[1]]
    assert readings[0].answers["rules"].tokens == readings[1].answers["rules"].tokens
    assert static_engine._graph_id == 1


def test_static_cache_grows_in_the_middle_of_an_answer(fused_export: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An answer longer than the room reserved for it moves the cache where it gets there (the cached positions
    copied over, the step bound again, the rotary rows of the positions to come written) and decodes on as
    the plain path does; the shared prefix cache stays usable for the next question."""
    from PIL import Image

    from vlm_sudoku.runtime.engine import _StaticKV

    monkeypatch.setattr(_StaticKV, "ANSWER_ROOM", 8)
    monkeypatch.setattr(_StaticKV, "ROUND", 16)  # several moves within a 40-token answer
    image = Image.fromarray(np.random.default_rng(8).integers(0, 255, (100, 130, 3), dtype=np.uint8))
    plain, static_engine = _static_pair(fused_export)
    from .engine_helpers import shared_prefix_tokens

    assert shared_prefix_tokens(static_engine, image, 40) == shared_prefix_tokens(plain, image, 40)
    assert static_engine._graph_id >= 4  # each question moved the cache more than once


def test_static_cache_fp16(tmp_path: Path, tiny_qwen2_vl_dir: Path) -> None:
    """The fp16 fused decoder (the one CUDA graphs run) through the static cache: fp16 cos/sin/cache buffers."""
    from PIL import Image

    from vlm_sudoku.export.exporter import ExportOptions, export_model
    from vlm_sudoku.runtime.engine import Engine

    from .engine_helpers import shared_prefix_tokens

    out = tmp_path / "export"
    export_model(tiny_qwen2_vl_dir, out, ExportOptions(precisions=("fp32", "fp16"), fused_decoder=True, check_tokens=0))
    image = Image.fromarray(np.random.default_rng(5).integers(0, 255, (120, 150, 3), dtype=np.uint8))
    engines = [Engine(out, provider="cpu", precision="fp16", io_binding=b) for b in (False, True)]
    assert engines[1]._kv is not None and engines[1]._kv.dtype == np.float16
    assert shared_prefix_tokens(engines[0], image, 32) == shared_prefix_tokens(engines[1], image, 32)


def test_static_cache_is_written_in_place(fused_export: Path) -> None:
    """The prefill writes the same keys and values into the shared buffer as the growing cache holds, and a
    question after the prefix leaves the prefix's positions as they were."""
    from PIL import Image

    from vlm_sudoku.runtime.prompts import shared_prompt

    plain, static_engine = _static_pair(fused_export, max_length=64)
    image = Image.fromarray(np.random.default_rng(3).integers(0, 255, (90, 90, 3), dtype=np.uint8))
    encoded = plain.encode_image(image)
    prompt = shared_prompt(plain.tokenizer, [encoded.num_tokens])
    _, want = plain.prefill(prompt.prefix_ids, [encoded])
    logits, got = static_engine.prefill(prompt.prefix_ids, [encoded])
    assert got.length == want.length and int(static_engine._io.token.numpy()[0, 0]) == int(logits.argmax())
    n = got.length
    before = {k: v.numpy()[:, :, :n].copy() for k, v in got.values.items()}
    for name, value in want.values.items():
        assert np.abs(before[name] - value).max() < 1e-5, name
    static_engine.generate(prompt.suffix_ids["rules"], past=got, max_new_tokens=8)
    for name, value in got.values.items():
        assert np.array_equal(value.numpy()[:, :, :n], before[name]), name


def test_static_cache_refuses_an_overwritten_prefix(fused_export: Path) -> None:
    """One buffer holds one sequence: a cache whose positions a later write replaced is an error when used."""
    plain, static_engine = _static_pair(fused_export)
    _, first = static_engine.prefill([1, 2, 3, 4, 5, 6])
    _, longer = static_engine.prefill([7, 8], past=first)  # extends first: both valid
    assert static_engine.generate([9], past=longer, max_new_tokens=3).tokens
    assert static_engine.generate([9], past=first, max_new_tokens=3).tokens  # rewrites from position 6 on
    assert longer.stale and not first.stale
    with pytest.raises(ValueError, match="overwritten"):
        static_engine.generate([9], past=longer, max_new_tokens=3)
    static_engine.prefill([10, 11])  # a new sequence from position 0
    with pytest.raises(ValueError, match="overwritten"):
        static_engine.generate([9], past=first, max_new_tokens=3)
    with pytest.raises(ValueError, match="not made by this engine"):
        static_engine.generate([9], past=plain.prefill([1, 2, 3])[1], max_new_tokens=3)


def test_static_cache_grows_for_max_new_tokens_past_its_size(fused_export: Path) -> None:
    plain, static_engine = _static_pair(fused_export, max_length=12)
    ids = list(range(3, 13))
    assert static_engine._kv.capacity == 12
    want = plain.generate(ids, max_new_tokens=300)
    got = static_engine.generate(ids, max_new_tokens=300)
    assert got.tokens == want.tokens and len(got.tokens) == 300 and got.steps == 299
    assert static_engine._kv.capacity >= len(ids) + 300


def test_static_cache_and_cuda_graph_options_are_checked(fused_export: Path, tiny_qwen2_vl_export: Path) -> None:
    from vlm_sudoku.runtime.engine import Engine
    from vlm_sudoku.runtime.providers import ProviderError

    with pytest.raises(ProviderError, match="CUDA graphs need the CUDA provider") as err:
        Engine(fused_export, provider="cpu", cuda_graph=True)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="needs the fused decoder"):
        Engine(tiny_qwen2_vl_export, provider="cpu", static_cache=True)
    with pytest.raises(ValueError, match="needs IO binding"):
        Engine(fused_export, provider="cpu", static_cache=True, io_binding=False)
    assert Engine(fused_export, provider="cpu", static_cache=True)._bound  # static implies IO binding
    assert Engine(fused_export, provider="cpu", io_binding=True, static_cache=False)._kv is None
    assert not Engine(fused_export, provider="cpu").cuda_graph  # CUDA graphs by default only on the CUDA provider


def test_rope_rows_of_decode_steps_equal_mrope_rows(fused_export: Path) -> None:
    """The rotary rows of generated tokens come from a table kept across generations; each row is exactly what
    rope_rows gives for that position alone, and prompt rows (unequal M-RoPE positions) are computed as given:
    the fused decoder's parity rests on these inputs."""
    from vlm_sudoku.runtime.engine import Engine, _RopeRows

    engine = Engine(fused_export, provider="cpu")
    cfg = engine.cfg
    table = _RopeRows(cfg, np.float32)
    for start, n in ((0, 1), (1, 5), (1020, 10), (3000, 1), (7, 3)):  # across blocks, backwards too
        cos, sin = table.of(np.broadcast_to(np.arange(start, start + n), (3, 1, n)))
        assert cos.shape == (n, cfg.head_dim // 2)
        for i in range(n):
            want = rope_rows(cfg, np.full((3, 1), start + i))
            np.testing.assert_array_equal(cos[i], want[0][0])
            np.testing.assert_array_equal(sin[i], want[1][0])
    ids, grid = _prompt(cfg, (1, 4, 6))
    positions, _ = get_rope_index(cfg, ids, image_grid_thw=grid)
    assert not (positions == positions[0]).all()
    for got, want in zip(table.of(positions), rope_rows(cfg, positions)):
        np.testing.assert_array_equal(got, want)
