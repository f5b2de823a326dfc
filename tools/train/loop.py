"""Train the embedded default model: resumable, time-boxed, reproducible.

    python -m vlm_sudoku.tools.train.loop --base BASE_DIR --ckpt CKPT_DIR --minutes 8 [--total-steps N]
    python -m vlm_sudoku.tools.train.loop --base BASE_DIR --ckpt CKPT_DIR --export OUT_DIR

Each call trains until its time budget is spent, then writes a checkpoint
(model, optimizer, step) that the next call resumes from: the GPU machine
runs commands of under ten minutes. The learning-rate schedule is fixed by
``--total-steps``, so how the run is cut into calls does not change it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import click

from .data import (GLYPH_CLASSES, GLYPH_COLUMN, IGNORE, JOIN_COLUMNS, JOINS, LABEL_CLASSES, MARK_COLUMNS, MARKINGS,
                   QUESTION_KINDS, TEXT_COLUMNS, TEXT_GROUPS, TRAINED_LAYERS, Mix, SampleMaker, collate)


class _Indexed:
    """Map-style dataset over one process's share of the sample indices start, start+1, ...

    With several processes (one per GPU), global step g takes the ``batch * world`` indices after
    start + g * batch * world, and process ``rank`` the ``rank``-th batch of them: every index is drawn
    once, in order, whatever the number of GPUs, so a run stays a pure function of (data seed, samples).
    """

    def __init__(self, maker: SampleMaker, start: int, length: int, batch: int = 1, rank: int = 0,
                 world: int = 1) -> None:
        self.maker, self.start, self.length = maker, start, length
        self.batch, self.rank, self.world = batch, rank, world

    def __len__(self) -> int:
        return self.length

    def index(self, i: int) -> int:
        step, within = divmod(i, self.batch)
        return self.start + (step * self.world + self.rank) * self.batch + within

    def __getitem__(self, i: int):
        return self.maker(self.index(i))


class _Processes:
    """The processes of one run: one per GPU under torchrun (gradients averaged by DistributedDataParallel),
    or this process alone. Why several: the data (rendering and photo augmentation on the CPU) sets the pace,
    about 5 steps/s of 32 samples for 15 cores, so a machine with four GPUs and 64 cores trains four times
    the samples in the same minutes. Process 0 plans the schedule, decides when to stop, logs and saves;
    it tells the others each step (``share``), so every process takes the same steps at the same rate."""

    def __init__(self) -> None:
        import torch

        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
            self.device = f"cuda:{local}"
        else:
            self.device = "cpu"
        if self.world > 1:
            import torch.distributed as dist

            dist.init_process_group("nccl" if self.device != "cpu" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, module):
        if self.world == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(module, device_ids=None if self.device == "cpu" else [self.device])

    def share(self, total_steps: int, stop: bool) -> tuple[int, bool]:
        """Process 0's schedule length (0: not set yet) and stop decision, for every process (one broadcast)."""
        if self.world == 1:
            return total_steps, stop
        import torch
        import torch.distributed as dist

        t = torch.tensor([total_steps, int(stop)], dtype=torch.int64, device=self.device)
        dist.broadcast(t, src=0)
        return int(t[0]), bool(t[1])


def _one_module(model, aux: "AuxHead"):
    """The model and its read-out head as one module (its forward gives both losses), so that one
    DistributedDataParallel averages the gradients of both."""
    import torch

    class Trainee(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model, self.head = model, aux.linear

        def forward(self, inputs: dict, token_labels):
            loss, aux_loss = self.model(**inputs).loss, aux.loss(token_labels)
            if aux_loss is None:  # a batch without cell labels: the head takes part with no gradient,
                loss = loss + 0.0 * sum(p.sum() for p in self.head.parameters())  # as every process must
            return loss, aux_loss

    return Trainee()


class AuxHead:
    """Training-only targets for the vision tower of a grid-view model: from each merged image token,
    a linear read-out of the cell under it: its symbol, row, column and region (classes), and which
    markings (killer cage, thermometer, kropki dot...; data.MARKINGS) it carries (one bit each).

    Why: the language model can only learn to look up the right cell once the image tokens say what
    they show and where in the grid they are; runs without this kept writing mostly blank rows, the
    gradient reaching the vision tower through a diffuse attention being too weak. The region and
    markings parts ask the same of the variant rules, which the model does not read yet (it guesses rule
    types it does not see). The head is dropped after training: the shipped model is a plain Qwen2-VL.
    """

    CLASSES = LABEL_CLASSES
    BITS = len(MARKINGS)
    GLYPHS = GLYPH_CLASSES  # after the bits (so a head saved before them loads row for row): clue crops' digits
    JOINS = len(JOINS)  # after the glyphs, for the same reason: the cage and line joins of the cell (data.JOINS)
    TEXT = len(TEXT_GROUPS)  # last: on a context view, the rules the words under the token name (data.TEXT_GROUPS)
    # the head's rows of each part, and the label columns (data.py) each part of bits is taught from
    MARK_ROWS = slice(sum(CLASSES), sum(CLASSES) + BITS)
    GLYPH_ROWS = slice(MARK_ROWS.stop, MARK_ROWS.stop + GLYPHS)
    JOIN_ROWS = slice(GLYPH_ROWS.stop, GLYPH_ROWS.stop + JOINS)
    TEXT_ROWS = slice(JOIN_ROWS.stop, JOIN_ROWS.stop + TEXT)
    BIT_PARTS = ((MARK_ROWS, MARK_COLUMNS), (JOIN_ROWS, JOIN_COLUMNS), (TEXT_ROWS, TEXT_COLUMNS))
    WEIGHT = 0.5
    MAX_POS_WEIGHT = 30.0

    def __init__(self, model, device: str) -> None:
        import torch

        hidden = model.config.vision_config.hidden_size
        self.linear = torch.nn.Linear(hidden, self.TEXT_ROWS.stop).to(device)
        self.features = None
        self.loaded_rows = 0  # rows taken from a saved head (load)
        visual = model.model.visual if hasattr(model, "model") and hasattr(model.model, "visual") else model.visual
        visual.register_forward_hook(self._keep)

    def load(self, path: Path) -> bool:
        """A saved head's weights; True when it had every output, False when it was an older, narrower
        head (symbol, row, column only: runs 4-8), whose rows are kept and the new ones left as initialised."""
        import torch

        saved = torch.load(path, map_location=self.linear.weight.device)
        rows = self.loaded_rows = saved["weight"].shape[0]  # the rows trained before (readout reports the rest)
        with torch.no_grad():
            self.linear.weight[:rows] = saved["weight"]
            self.linear.bias[:rows] = saved["bias"]
        return rows == self.linear.weight.shape[0]

    def _keep(self, _module, _inputs, output) -> None:
        self.features = output if not isinstance(output, tuple) else output[0]

    def loss(self, labels):
        import torch.nn.functional as F

        features, self.features = self.features, None
        if features is None or labels is None or not (labels >= 0).any():
            return None
        out = self.linear(features.float())
        logits = out[:, :sum(self.CLASSES)].split(self.CLASSES, dim=-1)
        parts = [F.cross_entropy(lg, labels[:, i], ignore_index=IGNORE) for i, lg in enumerate(logits)
                 if (labels[:, i] >= 0).any()]
        # the markings, joins and rule text, each weighed as marking_loss says: a cage's join or a rule's words
        # are as rare across a batch as a marking (the text on a few tokens of a few context views)
        for rows, columns in self.BIT_PARTS:
            bits = labels[:, columns]
            if (bits >= 0).any():
                parts.append(self.marking_loss(out[:, rows], bits))
        glyphs = labels[:, GLYPH_COLUMN]
        if (glyphs >= 0).any():  # a part of its own: a batch's few crop tokens would be lost among its grid views'
            parts.append(F.cross_entropy(out[:, self.GLYPH_ROWS], glyphs, ignore_index=IGNORE))
        return self.WEIGHT * sum(parts) / len(parts)

    @staticmethod
    def marking_loss(logits, bits):
        """Binary cross-entropy over the known marking bits, each marking's positives weighted up to its
        negatives (capped at MAX_POS_WEIGHT). Why: a marking covers a few cells of one puzzle in many, so an
        unweighted loss is lowest at "no marking anywhere"; runs 9-10's head learned exactly that (recall 0-19% on
        rendered variants at its threshold), which pushes the vision tokens little towards the markings the
        rules answer needs (docs/training.md: their average precision per run)."""
        import torch
        import torch.nn.functional as F

        known = bits >= 0
        positive = (bits == 1) & known
        pos = positive.sum(0).float()
        neg = (known & ~positive).sum(0).float()
        weight = torch.where(pos > 0, (neg / pos.clamp(min=1)).clamp(1.0, AuxHead.MAX_POS_WEIGHT), torch.ones_like(pos))
        per_bit = F.binary_cross_entropy_with_logits(logits, bits.clamp(min=0).float(), reduction="none",
                                                     pos_weight=weight)
        return per_bit[known].sum() / (known.float() * torch.where(positive, weight, torch.ones_like(weight))).sum()


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def save_checkpoint(ckpt: Path, model, optimizer, state: dict, aux: AuxHead | None = None) -> None:
    import torch

    tmp = ckpt.with_name(ckpt.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(model.state_dict(), tmp / "model.pt")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    if aux is not None:
        torch.save(aux.linear.state_dict(), tmp / "aux_head.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1))
    old = ckpt.with_name(ckpt.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if ckpt.exists():
        ckpt.rename(old)
    tmp.rename(ckpt)
    shutil.rmtree(old, ignore_errors=True)


TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "merges.txt")


def same_tokenizer(base: Path, ckpt: Path | None) -> None:
    """Refuse a checkpoint whose folder carries another tokenizer than the base's.

    Why: the samples are tokenized with the base's tokenizer, and recipe.py trains that tokenizer afresh from
    the generator and prompts of the day, so a base rebuilt after they changed numbers the tokens otherwise
    than the weights learnt (session 13's run 18 started so: an answer loss of 2.5 where run 17 ended at 0.12).
    Continue a trained folder with its own tokenizer: pass that folder as --base too (its weights are not read
    from there)."""
    if ckpt is None:
        return
    for name in TOKENIZER_FILES:
        ours, theirs = base / name, ckpt / name
        if ours.exists() and theirs.exists() and ours.read_bytes() != theirs.read_bytes():
            raise click.ClickException(f"{ckpt}: its {name} differs from the base's ({base}): the weights would read "
                                       "other token ids; use the checkpoint's own folder as --base")


def load_model(base: Path, ckpt: Path | None, device: str):
    """The base's weights, or a checkpoint's: model.pt (with optimizer) or a w32/ folder brought back."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    source = ckpt if ckpt is not None and (ckpt / "config.json").exists() else base
    if any(source.glob("*.safetensors")):
        model = Qwen2VLForConditionalGeneration.from_pretrained(source, dtype=torch.float32, attn_implementation="sdpa")
    else:  # a base sent without its weights (they are a pure function of config and seed)
        from .recipe import MODEL_SEED, untrained_model

        model = untrained_model(source, MODEL_SEED)
    if ckpt is not None and (ckpt / "model.pt").exists():
        model.load_state_dict(torch.load(ckpt / "model.pt", map_location="cpu"))
    return model.to(device)


def with_settings(base: Path, work: Path, context_view: int | None = None, map_layers: bool = False,
                  clue_crops: bool = False, text_crops: bool = False) -> Path:
    """A copy of the base folder whose preprocessor_config.json says what the training adds: the samples and
    the exported model then agree. Weights are linked, not copied."""
    work.mkdir(parents=True, exist_ok=True)
    for f in base.iterdir():
        if not f.is_file():
            continue
        if f.suffix == ".safetensors":
            (work / f.name).symlink_to(f.resolve())
        else:
            shutil.copy2(f, work / f.name)
    if context_view is not None:
        with_context_view(work, context_view, base)
    if map_layers or clue_crops or text_crops:
        from ...runtime.clue_crops import CONFIG_KEY as CLUE_KEY, ClueCrops
        from ...runtime.marks_map import CONFIG_KEY
        from ...runtime.text_crops import CONFIG_KEY as TEXT_KEY, TextCrops

        pre = json.loads((work / "preprocessor_config.json").read_text())
        if map_layers:  # the marks-map questions are asked of models that declare their layers (runtime/marks_map.py)
            pre[CONFIG_KEY] = list(TRAINED_LAYERS)
        if clue_crops:  # the clue crops are asked of models that declare them (runtime/clue_crops.py)
            pre.setdefault(CLUE_KEY, ClueCrops().to_dict())
        if text_crops:  # the text crops likewise (runtime/text_crops.py)
            pre.setdefault(TEXT_KEY, TextCrops().to_dict())
        (work / "preprocessor_config.json").write_text(json.dumps(pre, indent=2) + "\n")
    return work


def with_context_view(work: Path, size: int, base: Path) -> None:
    """The folder's grid view (a copy of ``base``'s) adds (size > 0) or drops (0) the context view."""
    from ...runtime.grid_view import CONFIG_KEY, GridView
    from ...runtime.model_config import ModelFolderError

    pre = json.loads((work / "preprocessor_config.json").read_text())
    view = GridView.from_preprocessor_config(pre)
    if view is None:
        raise click.UsageError(f"{base} reads whole pictures (no {CONFIG_KEY}): a context view needs a grid view")
    pre[CONFIG_KEY] = GridView(view.size, view.margin, size).to_dict()
    try:
        GridView.from_preprocessor_config(pre)
    except ModelFolderError as exc:
        raise click.BadParameter(str(exc), param_hint="--context-view") from None
    (work / "preprocessor_config.json").write_text(json.dumps(pre, indent=2) + "\n")


def export_folder(base: Path, model, out: Path, dtype: str = "float16", shard: str = "200MB") -> None:
    """The shipped Hugging Face folder: the base's tokenizer/processor files + trained weights."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    for f in base.iterdir():  # everything but the weights and their shard index (save_pretrained writes its own)
        if f.is_file() and f.suffix != ".safetensors" and not f.name.endswith(".safetensors.index.json"):
            shutil.copy2(f, out / f.name)
    model = model.to("cpu", dtype=getattr(torch, dtype))
    model.save_pretrained(out, safe_serialization=True, max_shard_size=shard)


def write_final(base: Path, model, state: dict, out: Path, aux: AuxHead | None = None) -> None:
    """What comes back from the GPU machine (files under 16 MB): fp32 shards + state (and the read-out head)
    to resume from, and the fp16 Hugging Face folder to ship."""
    import torch

    model.save_pretrained(out / "w32", safe_serialization=True, max_shard_size="14MB")
    (out / "w32" / "state.json").write_text(json.dumps(state, indent=1))
    if aux is not None:  # run 8's final folder lacked it, so run 9 had to start from run 7's head
        torch.save(aux.linear.state_dict(), out / "w32" / "aux_head.pt")
    for name in TOKENIZER_FILES:  # the weights' own token ids travel with them (same_tokenizer checks them)
        if (base / name).exists():
            shutil.copy2(base / name, out / "w32" / name)
    export_folder(base, model, out / "hf", shard="15MB")


@click.command()
@click.option("--base", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True,
              help="Untrained model folder (tools/train/recipe.py).")
@click.option("--ckpt", type=click.Path(path_type=Path), required=True, help="Checkpoint folder (resumed if present).")
@click.option("--minutes", type=float, default=8.0, show_default=True, help="Training time budget of this call.")
@click.option("--total-steps", type=int, default=0, show_default=True,
              help="Length of the LR schedule; 0: set once from the speed measured over steps 100-400 and the --plan-minutes left.")
@click.option("--plan-minutes", type=float, default=40.0, show_default=True,
              help="Whole run's planned training time (sets the schedule when --total-steps is 0).")
@click.option("--save-every", type=float, default=5.0, show_default=True, help="Minutes between checkpoints.")
@click.option("--batch", type=int, default=32, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--warmup", type=int, default=300, show_default=True)
@click.option("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1), show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Data seed.")
@click.option("--photo-rate", type=float, default=Mix.photo_rate, show_default=True)
@click.option("--photo-shuffle", type=click.FloatRange(0, 1), default=Mix.photo_shuffle, show_default=True,
              help="Share of training photos shown with their grid's bands and stacks reordered (train/shuffle.py).")
@click.option("--few-clues", type=click.FloatRange(0, 1), default=Mix.few_clues, show_default=True,
              help="Share of variant puzzles cut to 1-2 clues of each marking (a one-rule curriculum: "
                   "render.puzzles.fewer_clues).")
@click.option("--marks", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Weight of the marks-map question among rendered samples' questions ("
                   + ", ".join(f"{k} {w:.2f}" for k, w in zip(QUESTION_KINDS, Mix.questions[:-1]))
                   + "); above 0 the model declares the layers it is taught (runtime/marks_map.py).")
@click.option("--title", type=click.FloatRange(0), default=Mix.title, show_default=True,
              help="Weight of the title drill (the words heading a rules text the picture must show; "
                   "train/data.py TITLE_QUESTION) among rendered samples' questions; 0 draws the samples of runs "
                   "before it.")
@click.option("--clue", type=click.FloatRange(0), default=Mix.clue, show_default=True,
              help="Weight of the clue crop (one printed clue number cut out and enlarged: runtime/clue_crops.py) "
                   "among rendered samples' questions; above 0 the model declares the crops.")
@click.option("--clue-pictures", type=click.FloatRange(0, 1), default=Mix.clue_pictures, show_default=True,
              help="Share of pictures drawn for the clue drill alone (a puzzle with printed clue numbers, every sample "
                   "of it a crop: data.Mix.clue_pictures); needs --clue.")
@click.option("--small-pictures", type=click.FloatRange(0, 1), default=Mix.small_pictures, show_default=True,
              help="Share of rendered newspaper and book pictures drawn as small photos, a long side of 240-480 px "
                   "(data.Mix.small_pictures), where grids' cells come out at 10-40 px.")
@click.option("--text-pictures", type=click.FloatRange(0, 1), default=Mix.text_pictures, show_default=True,
              help="Share of pictures drawn for the text drill alone (each sample a line of words found around the "
                   "grid, cut out and enlarged, asked which words-only rules it states: runtime/text_crops.py); "
                   "above 0 the model declares the text crops.")
@click.option("--kinds", default=Mix.kinds, show_default=True,
              help="Puzzle kinds drawn for rendered samples (render.puzzles.parse_kinds: 'all', 'classic' or a comma "
                   "list, a variant kind weighted as kind*N), e.g. only those with clue numbers for a clue-crop run, or "
                   "'all,disjoint*3' for more of one kind.")
@click.option("--per-picture", type=click.IntRange(1, 32), default=Mix.per_picture, show_default=True,
              help="Consecutive samples asked about one drawn picture, each its own question (drawing pictures "
                   "on the CPU sets a run's pace); best a divisor of --batch, whose samples one worker makes; 1 "
                   "draws a picture for every sample, as runs before it did.")
@click.option("--easy-samples", type=int, default=0, show_default=True,
              help="First samples drawn as clean app screenshots of classic 4/6/9 grids (a warm-up curriculum).")
@click.option("--final-out", type=click.Path(path_type=Path), default=None,
              help="After training: write fp32 shards + state (w32/) and the fp16 folder (hf/) here.")
@click.option("--export", "export_to", type=click.Path(path_type=Path), default=None,
              help="Write the fp16 Hugging Face folder from the checkpoint and stop.")
@click.option("--context-view", type=click.IntRange(min=0), default=None,
              help="Train (or export) with the whole picture as a second image, shrunk to fit N x N pixels "
                   "(runtime/grid_view.py); 0 turns it off. Default: the base folder's own setting.")
def main(base: Path, ckpt: Path, minutes: float, total_steps: int, plan_minutes: float, save_every: float, batch: int,
         lr: float, warmup: int, workers: int, seed: int, photo_rate: float, photo_shuffle: float, few_clues: float,
         easy_samples: int, final_out: Path | None, export_to: Path | None, context_view: int | None,
         marks: float, per_picture: int, title: float, clue: float, clue_pictures: float, small_pictures: float,
         text_pictures: float, kinds: str) -> None:
    import torch
    from torch.utils.data import DataLoader

    if clue_pictures and not clue:
        raise click.UsageError("--clue-pictures draws clue crops: give --clue a weight above 0 as well")
    same_tokenizer(base, ckpt)
    if context_view is not None or marks or clue or text_pictures:
        base = with_settings(base, Path(tempfile.mkdtemp(prefix="vlm_base_")), context_view, marks > 0, clue > 0,
                             text_pictures > 0)
    procs = _Processes()
    device = procs.device
    model = load_model(base, ckpt, device)
    if export_to is not None:
        export_folder(base, model, export_to)
        click.echo(f"wrote {export_to}")
        return
    say = click.echo if procs.main else (lambda *a, **k: None)
    torch.backends.cuda.matmul.allow_tf32 = True
    state = json.loads((ckpt / "state.json").read_text()) if (ckpt / "state.json").exists() else {"step": 0, "samples": 0}
    state.setdefault("config", {"batch": batch, "lr": lr, "warmup": warmup, "seed": seed, "photo_rate": photo_rate,
                                "easy_samples": easy_samples})
    if procs.world > 1:
        state["config"]["gpus"] = procs.world  # a step is batch x gpus samples
    if context_view is not None:
        state["config"]["context_view"] = context_view
    if photo_shuffle:
        state["config"]["photo_shuffle"] = photo_shuffle
    if few_clues:
        state["config"]["few_clues"] = few_clues
    if marks:
        state["config"]["marks"] = marks
    if per_picture > 1:
        state["config"]["per_picture"] = per_picture
    if title:
        state["config"]["title"] = title
    if clue:
        state["config"]["clue"] = clue
    if clue_pictures:
        state["config"]["clue_pictures"] = clue_pictures
    if small_pictures:
        state["config"]["small_pictures"] = small_pictures
    if text_pictures:
        state["config"]["text_pictures"] = text_pictures
    if kinds != Mix.kinds:
        state["config"]["kinds"] = kinds
    if total_steps:
        state["total_steps"] = total_steps
    aux = AuxHead(model, device)
    whole_head = True
    if (ckpt / "aux_head.pt").exists():
        whole_head = aux.load(ckpt / "aux_head.pt")
        if not whole_head:
            say("read-out head widened (regions, markings, clue digits, joins or rule text): its new outputs start "
                "fresh", err=True)
    params = [*model.named_parameters(), *(("aux." + n, p) for n, p in aux.linear.named_parameters())]
    decay = [p for n, p in params if p.ndim >= 2]
    no_decay = [p for n, p in params if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=lr, betas=(0.9, 0.98), eps=1e-8, fused=device != "cpu")
    if (ckpt / "optimizer.pt").exists() and (ckpt / "aux_head.pt").exists() and whole_head:
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", map_location=device))
    trainee = procs.wrap(_one_module(model, aux))
    mix = Mix(photo_rate=photo_rate, easy_samples=easy_samples, photo_shuffle=photo_shuffle, few_clues=few_clues,
              questions=(*Mix.questions[:-1], marks), per_picture=per_picture, title=title, clue=clue,
              clue_pictures=clue_pictures, small_pictures=small_pictures, text_pictures=text_pictures, kinds=kinds)
    maker = SampleMaker(base, seed=seed, mix=mix)
    pad = maker.tok.specials.endoftext
    samples = _Indexed(maker, state["samples"], 10**9, batch=batch, rank=procs.rank, world=procs.world)
    loader = DataLoader(samples, batch_size=batch, num_workers=workers,
                        collate_fn=lambda s: collate(s, pad), prefetch_factor=4 if workers else None,
                        persistent_workers=False, pin_memory=device != "cpu")
    model.train()
    start = began = time.time()
    deadline = start + minutes * 60
    last_log, losses, photos, aux_losses = time.time(), [], 0, []
    last_save = time.time()
    speed_from = None
    say(f"resuming at step {state['step']} (samples {state['samples']}) on {device} x{procs.world}; "
        f"budget {minutes} min", err=True)
    for batch_data in loader:
        step = state["step"]
        total = state.get("total_steps", 10**6)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, total, lr, warmup)
        token_labels = batch_data["token_labels"].to(device, non_blocking=True)
        inputs = {k: v.to(device, non_blocking=True) for k, v in batch_data.items()
                  if k not in ("photos", "token_labels")}
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=device != "cpu"):
            loss, aux_loss = trainee(inputs, token_labels)
        if aux_loss is not None:
            aux_losses.append(float(aux_loss.detach()))
            loss = loss + aux_loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] += 1
        state["samples"] += len(batch_data["input_ids"]) * procs.world
        losses.append(float(loss.detach()))
        photos += batch_data["photos"]
        if time.time() - last_log > 30 or state["step"] == 1:
            rate = len(losses) / (time.time() - last_log)
            aux_text = f" (vision read-out {sum(aux_losses) / len(aux_losses):.4f})" if aux_losses else ""
            say(f"step {state['step']} loss {sum(losses) / len(losses):.4f}{aux_text} "
                f"lr {optimizer.param_groups[0]['lr']:.2e} {rate:.2f} steps/s photos {photos}", err=True)
            last_log, losses, photos, aux_losses = time.time(), [], 0, []
        done = state["step"]
        if "total_steps" not in state and procs.main:  # the schedule's length, fixed once from the measured speed
            # Measured once the data workers run at pace (the first hundred steps are slower: run 8's schedule,
            # set from steps 20-120, ended at 11.6 of 17.5 minutes), for the planned time that is left.
            if speed_from is None and done >= 100:
                speed_from = (time.time(), done)
            elif speed_from is not None and done - speed_from[1] >= 300:
                rate = (done - speed_from[1]) / (time.time() - speed_from[0])
                left = plan_minutes * 60 - (time.time() - began)
                state["total_steps"] = done + max(0, int(rate * left))
                say(f"{rate:.2f} steps/s: schedule set to {state['total_steps']} steps", err=True)
        # one message a step from process 0: the schedule for the next step and whether there is one
        planned, stop = procs.share(state.get("total_steps", 0), time.time() > deadline or done >= total)
        if planned:
            state["total_steps"] = planned
        if stop:
            break
        if procs.main and time.time() - last_save > save_every * 60:
            state["wall_seconds"] = state.get("wall_seconds", 0) + time.time() - start
            start = time.time()
            save_checkpoint(ckpt, model, optimizer, state, aux)
            last_save = time.time()
    if procs.main:
        state["wall_seconds"] = state.get("wall_seconds", 0) + time.time() - start
        save_checkpoint(ckpt, model, optimizer, state, aux)
        click.echo(json.dumps(state), err=True)
        if final_out is not None:
            write_final(base, model, state, final_out, aux)
    sys.stdout.flush()
    os._exit(0)  # skip tearing down the worker pool (seconds of idle device time)


if __name__ == "__main__":
    main()
