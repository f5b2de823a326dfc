"""Copy the renderer's fonts into one folder (default: the repository's git-ignored .fonts/).

Carry that folder to a machine without these fonts (the GPU machine has only
matplotlib's DejaVu) and point ``VLM_SUDOKU_FONTS`` at it, or put it at the
repository root: the same files give the same pictures for the same seeds.
Every file is freely licensed (OFL, Apache-2.0, Bitstream Vera, AGPL/GPL with
the font exception); ``LICENSES.md`` in the folder lists each one. The files
come from Debian packages:

    apt-get install fonts-dejavu-core fonts-liberation2 fonts-urw-base35 fonts-roboto-unhinted \\
        fonts-open-sans fonts-crosextra-caladea fonts-cabin fonts-quicksand fonts-ebgaramond \\
        fonts-comic-neue fonts-breip fonts-bwht fonts-humor-sans fonts-kristi fonts-dancingscript \\
        fonts-kaushanscript fonts-lato fonts-freefont-ttf

Usage: ``python -m vlm_sudoku.tools.render.collect_fonts [DEST]``
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from .fonts import CATALOGUE, REPO_FONTS, SYSTEM_DIRS, find_files, matplotlib_font_dir


def collect(dest: Path = REPO_FONTS, sources: list[Path] | None = None) -> tuple[list[Path], list[str]]:
    """Copy every catalogued font found in ``sources`` into ``dest``; returns (copied, missing names)."""
    dirs = list(sources) if sources is not None else [*SYSTEM_DIRS]
    if sources is None and matplotlib_font_dir() is not None:
        dirs.append(matplotlib_font_dir())  # type: ignore[arg-type]
    found = find_files([d for d in dirs if d.resolve() != dest.resolve()])
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for name, src in sorted(found.items()):
        target = dest / name
        if not target.exists() or target.stat().st_size != src.stat().st_size:
            shutil.copyfile(src, target)
        copied.append(target)
    missing = sorted(set(CATALOGUE) - set(found) - {p.name for p in dest.iterdir()})
    lines = ["# Fonts used by vlm_sudoku.tools.render", "", "| file | name | kind | license | Debian package |",
             "|---|---|---|---|---|"]
    for target in copied:
        e = CATALOGUE[target.name]
        lines.append(f"| {target.name} | {e.name} | {e.kind} | {e.license} | {e.package} |")
    lines += ["", "Full license texts: /usr/share/doc/<package>/copyright on a Debian system."]
    (dest / "LICENSES.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (dest / ".gitignore").write_text("# font files are never committed\n*\n", encoding="utf-8")
    return copied, missing


@click.command()
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path), default=REPO_FONTS)
def main(dest: Path) -> None:
    """Copy the catalogued fonts found on this machine into DEST (default: <repo>/.fonts)."""
    copied, missing = collect(dest)
    total = sum(p.stat().st_size for p in copied)
    click.echo(f"{len(copied)} fonts, {total / 1e6:.1f} MB in {dest}")
    if missing:
        packages = sorted({CATALOGUE[m].package for m in missing})
        click.echo(f"missing {len(missing)}: {', '.join(missing)}\n  apt-get install {' '.join(packages)}", err=True)


if __name__ == "__main__":
    main()
