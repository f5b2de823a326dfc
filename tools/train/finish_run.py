"""After a training run on the GPU machine: its files in place, the fp16 folder, the package, the measurements.

    python -m vlm_sudoku.tools.train.finish_run RUN_DIR [--base .train/base_v3] [--count 100]

RUN_DIR holds what came back from the machine (each file at most 16 MB): the fp32 shards
``model-*.safetensors`` of ``w32/``, the fp16 shards as ``hf_model-*.safetensors``, and ``small.tgz`` with the
rest of ``--final-out`` (configs, state, the read-out head), or, from a run that only copied ``w32/``, its
``aux_head.pt`` and ``state.json`` beside the shards. Then, in RUN_DIR:

- ``final/w32`` and ``final/hf``: the run's folders as train.loop wrote them (resume with ``--ckpt final/w32``);
- ``hf1``: the fp16 Hugging Face folder in one file (train.loop ``--export``);
- ``package``: the shippable folder (tools/package_model: graphs sharing the fp16 weights);
- ``eval.json``: tools/eval_reader over the photo split, rendered classic, rendered variants and the by-kind set;
- ``parity.json``: whether the ONNX package and transformers on its weights give the same answers on every
  validation photo (and, for a model that declares a marks map, on renders where the maps are asked).

Why one command: these steps were done by hand after every run, and a step left out (the read-out head not
kept, the shards in the wrong folder) cost the next run. Nothing outside RUN_DIR is written; shipping stays a
deliberate copy to runtime/default_model.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import click

SETS = "photos-val,rendered-classic,rendered-variants,rendered-by-kind"


def gather(run: Path, base: Path) -> Path:
    """``run/final/w32`` (and ``final/hf`` when the fp16 shards came back) from the files as they came back."""
    final = run / "final"
    w32 = final / "w32"
    if (run / "small.tgz").exists() and not final.exists():
        with tarfile.open(run / "small.tgz") as tar:
            if hasattr(tarfile, "data_filter"):  # Python 3.10.12+/3.11.4+: refuse links and paths out of the folder
                tar.extractall(final, filter="data")
            else:
                tar.extractall(final)
    w32.mkdir(parents=True, exist_ok=True)
    for f in sorted(run.glob("hf_model-*.safetensors")):
        (final / "hf").mkdir(exist_ok=True)
        shutil.move(str(f), final / "hf" / f.name.removeprefix("hf_"))
    loose = ("aux_head.pt", "state.json", "model.safetensors.index.json", "config.json", "generation_config.json")
    for f in [*run.glob("model-*.safetensors"), *(run / name for name in loose)]:
        if f.exists():
            shutil.move(str(f), w32 / f.name)
    for name in ("config.json", "generation_config.json"):
        if not (w32 / name).exists():  # a run that only copied the shards: the architecture is the base's
            shutil.copy2(base / name, w32 / name)
    shards = sorted(w32.glob("model-*.safetensors"))
    if not shards:
        raise click.ClickException(f"{run}: no model-*.safetensors shards (from the run's w32/) here or in {w32}")
    if not (w32 / "model.safetensors.index.json").exists() and len(shards) > 1:
        raise click.ClickException(f"{w32}: {len(shards)} shards but no model.safetensors.index.json "
                                   "(it travels in small.tgz)")
    return w32


def export_fp16(base: Path, w32: Path, out: Path) -> Path:
    """The fp16 folder in one file, with the tokenizer and processor files of the run's own ``final/hf`` where
    it came back: a run made with ``--context-view`` declares that view there, which the base lacks."""
    from .loop import export_folder, load_model

    settings = w32.parent / "hf"
    if not (settings / "preprocessor_config.json").exists():
        settings = base
    export_folder(settings, load_model(base, w32, "cpu"), out)
    return out


def parity(package: Path, rendered: int = 18) -> dict:
    """The ONNX runtime and transformers on the same fp16 weights, answer for answer, on the validation photos,
    and, for a model that declares a marks map, on ``rendered`` renders of the by-kind set (one kind each, in
    turn): the photos are classic, so only there are the maps asked."""
    from ...export.torch_backend import TorchPipeline
    from ...runtime.marks_map import load_layers
    from ...runtime.pipeline import Pipeline
    from ..eval_reader import by_kind_items, photo_items

    # one grid view: the answers compared are the model's own, which the further views only add to
    onnx, torch_pipe = Pipeline.load(package, provider="cpu", views=1), TorchPipeline(package / "hf", device="cpu")
    out: dict = {}
    sets = {"photos": list(photo_items())}
    if load_layers(package):
        sets["rendered"] = list(by_kind_items(rendered))
    for name, items in sets.items():
        differ = [item.name for item in items if onnx.read(item.image) != torch_pipe.read(item.image)]
        out.update({name: len(items), f"same_{name}": len(items) - len(differ), f"different_{name}": differ})
    out.update(same=out["same_photos"], different=out["different_photos"])  # (the keys of earlier runs)
    return out


@click.command()
@click.argument("run", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--base", type=click.Path(path_type=Path, exists=True, file_okay=False), default=Path(".train/base_v3"),
              show_default=True, help="The untrained model folder the run started from (its tokenizer and configs).")
@click.option("--count", default=100, show_default=True, help="Rendered images per rendered set.")
@click.option("--sets", default=SETS, show_default=True)
@click.option("--no-parity", is_flag=True, help="Skip the ONNX-against-transformers comparison.")
def main(run: Path, base: Path, count: int, sets: str, no_parity: bool) -> None:
    """Place a run's files, export, package and measure it (everything inside RUN)."""
    from ...runtime.pipeline import Pipeline
    from ..eval_reader import evaluate, table
    from ..package_model import package

    w32 = gather(run, base)
    click.echo(f"checkpoint: {w32}", err=True)
    hf1 = export_fp16(base, w32, run / "hf1")
    if (run / "package").exists():
        shutil.rmtree(run / "package")
    package(hf1, run / "package")
    click.echo(f"package: {run / 'package'}", err=True)
    rows = evaluate(Pipeline.load(run / "package", provider="cpu"), [s.strip() for s in sets.split(",") if s.strip()],
                    count)
    (run / "eval.json").write_text(json.dumps(rows, indent=1) + "\n")
    click.echo(table(rows))
    if not no_parity:
        same = parity(run / "package")
        (run / "parity.json").write_text(json.dumps(same, indent=1) + "\n")
        click.echo(f"ONNX vs transformers: the same answers on {same['same']} of {same['photos']} validation photos"
                   + (f" and {same['same_rendered']} of {same['rendered']} by-kind renders (marks maps asked)"
                      if "rendered" in same else ""))


if __name__ == "__main__":
    main()
