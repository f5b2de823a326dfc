"""vlm-export on wrong input: one line on stderr, exit 1, and nothing that looks like a complete export.

Also: reuse of an existing export, --force, and the atomic write.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")

from vlm_sudoku.export import cli as cli_mod  # noqa: E402
from vlm_sudoku.export import exporter  # noqa: E402
from vlm_sudoku.runtime.manifest import MANIFEST_FILE, Manifest  # noqa: E402


def run(*args: str):
    runner = CliRunner()
    return runner.invoke(cli_mod.cli, ["--quiet", *args], catch_exceptions=False)


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    err = result.stderr.strip()
    assert "Traceback" not in result.output and "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("vlm-export: error: ")
    for fragment in fragments:
        assert fragment in err


def no_complete_export(parent: Path) -> None:
    """Neither a folder with a manifest nor a leftover partial folder."""
    leftovers = [p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name]
    assert not leftovers, leftovers
    assert not list(parent.rglob(MANIFEST_FILE))


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_folder_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"x")
    result = run(str(tmp_path / "photos"), "-o", str(tmp_path / "out"))
    assert_one_line_error(result, "no config.json")
    no_complete_export(tmp_path)


def test_missing_folder(tmp_path: Path) -> None:
    assert_one_line_error(run(str(tmp_path / "nope"), "-o", str(tmp_path / "out")), "no such folder")


def test_unsupported_model_type(tmp_path: Path, tiny_qwen2_vl_dir: Path) -> None:
    model = copy_model(tiny_qwen2_vl_dir, tmp_path / "m")
    cfg = json.loads((model / "config.json").read_text())
    cfg["model_type"] = "llama"
    (model / "config.json").write_text(json.dumps(cfg))
    assert_one_line_error(run(str(model), "-o", str(tmp_path / "out")), "unsupported model_type 'llama'")
    no_complete_export(tmp_path)


def test_missing_weights(tmp_path: Path, tiny_qwen2_vl_dir: Path) -> None:
    model = copy_model(tiny_qwen2_vl_dir, tmp_path / "m")
    (model / "model.safetensors").rename(model / "pytorch_model.bin")
    assert_one_line_error(run(str(model), "-o", str(tmp_path / "out")), "no *.safetensors weights", "pytorch_model.bin")
    no_complete_export(tmp_path)


def test_corrupt_weights(tmp_path: Path, tiny_qwen2_vl_dir: Path) -> None:
    model = copy_model(tiny_qwen2_vl_dir, tmp_path / "m")
    (model / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    assert_one_line_error(run(str(model), "-o", str(tmp_path / "out")))
    no_complete_export(tmp_path)


def test_output_folder_of_another_model_needs_force(
    tmp_path: Path, tiny_qwen2_vl_export: Path, tiny_qwen2_5_vl_dir: Path
) -> None:
    out = shutil.copytree(tiny_qwen2_vl_export, tmp_path / "out")
    before = (out / MANIFEST_FILE).read_text()
    assert_one_line_error(run(str(tiny_qwen2_5_vl_dir), "-o", str(out)), "another model", "--force")
    assert (out / MANIFEST_FILE).read_text() == before  # untouched

    result = run(str(tiny_qwen2_5_vl_dir), "-o", str(out), "--force", "--check-tokens", "0")
    assert result.exit_code == 0, result.output
    assert Manifest.load(out).architecture == "qwen2_5_vl"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_non_empty_folder_without_manifest_needs_force(tmp_path: Path, tiny_qwen2_vl_dir: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert_one_line_error(run(str(tiny_qwen2_vl_dir), "-o", str(out)), "no complete vlm-export manifest")
    assert (out / "notes.txt").read_text() == "mine"


def test_disk_estimate_counts_every_graph_written(tiny_qwen2_vl_dir: Path) -> None:
    """The fused graphs hold another copy of the weights per float precision and int4 about half a byte a
    weight: the space check must not pass an export that then fills the disk."""
    from vlm_sudoku.export.exporter import ExportOptions, _estimate_bytes
    from vlm_sudoku.export.source import inspect_model_dir

    source = inspect_model_dir(tiny_qwen2_vl_dir)
    plain = _estimate_bytes(source, ExportOptions(precisions=("fp32", "fp16")))
    fused = _estimate_bytes(source, ExportOptions(precisions=("fp32", "fp16"), fused_decoder=True))
    quantized = _estimate_bytes(source, ExportOptions(precisions=("fp32", "fp16", "int4"), fused_decoder=True))
    assert plain < fused < quantized
    assert fused - plain >= 6 * source.num_params  # fp32 + fp16 copies of the weights


def test_no_disk_space(tmp_path: Path, tiny_qwen2_vl_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exporter, "free_bytes", lambda folder: 1000)
    assert_one_line_error(run(str(tiny_qwen2_vl_dir), "-o", str(tmp_path / "out")), "not enough disk space")
    no_complete_export(tmp_path)


def test_disk_full_while_writing(tmp_path: Path, tiny_qwen2_vl_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(exporter, "_export_graphs", full)
    assert_one_line_error(run(str(tiny_qwen2_vl_dir), "-o", str(tmp_path / "out")), "no space left")
    no_complete_export(tmp_path)
    assert not (tmp_path / "out").exists()


def test_failure_midway_leaves_nothing_complete(
    tmp_path: Path, tiny_qwen2_vl_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = exporter._export_graphs

    def export_then_fail(model, tmp, options, say):
        real(model, tmp, options, say)  # graphs are written into the temporary folder...
        raise RuntimeError("simulated crash")  # ...then the process fails

    monkeypatch.setattr(exporter, "_export_graphs", export_then_fail)
    result = run(str(tiny_qwen2_vl_dir), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert "internal error: RuntimeError: simulated crash" in result.stderr
    assert "Traceback" not in result.stderr
    no_complete_export(tmp_path)
    assert not (tmp_path / "out").exists()


def test_output_path_is_a_file(tmp_path: Path, tiny_qwen2_vl_dir: Path) -> None:
    (tmp_path / "out").write_text("x")
    assert_one_line_error(run(str(tiny_qwen2_vl_dir), "-o", str(tmp_path / "out")), "not a folder")


def test_tensorrt_absent_is_one_line(tmp_path: Path, tiny_qwen2_vl_dir: Path) -> None:
    import onnxruntime as ort

    if "TensorrtExecutionProvider" in ort.get_available_providers():
        pytest.skip("TensorRT present here")
    result = run(str(tiny_qwen2_vl_dir), "-o", str(tmp_path / "out"), "--tensorrt")
    assert_one_line_error(result, "TensorRT is not available")
    assert not (tmp_path / "out").exists()


def test_rerun_reuses_and_changed_options_reexport(tmp_path: Path, tiny_qwen2_vl_dir: Path) -> None:
    out = tmp_path / "out"
    first = run(str(tiny_qwen2_vl_dir), "-o", str(out), "--check-tokens", "0", "--json")
    assert first.exit_code == 0, first.output
    created = json.loads(first.stdout)
    assert created["reused"] is False

    again = run(str(tiny_qwen2_vl_dir), "-o", str(out), "--check-tokens", "0", "--json")
    assert json.loads(again.stdout)["reused"] is True
    assert json.loads(again.stdout)["created_at"] == created["created_at"]

    changed = run(str(tiny_qwen2_vl_dir), "-o", str(out), "--check-tokens", "0", "--opset", "17", "--json")
    body = json.loads(changed.stdout)
    assert body["reused"] is False and body["options"]["opset"] == 17
    assert body["export_key"] != created["export_key"]

    forced = run(str(tiny_qwen2_vl_dir), "-o", str(out), "--check-tokens", "0", "--opset", "17", "--force", "--json")
    assert json.loads(forced.stdout)["reused"] is False


def test_check_only_reports_parity(tiny_qwen2_vl_dir: Path, tiny_qwen2_vl_export: Path) -> None:
    result = run(str(tiny_qwen2_vl_dir), "-o", str(tiny_qwen2_vl_export), "--check-only", "--check-tokens", "8")
    assert result.exit_code == 0, result.output
    assert "fp32 parity ok" in result.stdout and "8/8 greedy tokens equal" in result.stdout


def test_check_only_refuses_an_export_of_another_model(tiny_qwen2_5_vl_dir: Path, tiny_qwen2_vl_export: Path) -> None:
    result = run(str(tiny_qwen2_5_vl_dir), "-o", str(tiny_qwen2_vl_export), "--check-only")
    assert_one_line_error(result, "other weights")


def test_help_has_examples() -> None:
    result = CliRunner().invoke(cli_mod.cli, ["--help"])
    assert result.exit_code == 0 and "Examples:" in result.output and "--precision" in result.output


def test_export_into_the_model_folder_is_refused_even_with_force(tmp_path: Path, tiny_qwen2_vl_dir: Path) -> None:
    model = copy_model(tiny_qwen2_vl_dir, tmp_path / "m")
    assert_one_line_error(run(str(model), "-o", str(model), "--force"), "contains the model folder")
    assert_one_line_error(run(str(model), "-o", str(tmp_path), "--force"), "contains the model folder")
    assert (model / "model.safetensors").is_file()
