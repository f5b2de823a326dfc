"""Fonts for the renderer: a fixed catalogue of freely licensed files, found on disk.

Only files named in :data:`CATALOGUE` are used, so two machines that hold the
same files (for example both carry the folder that ``collect_fonts`` fills)
render the same pixels for the same seed. Search order, first hit of a file
name wins: folders passed in, ``$VLM_SUDOKU_FONTS`` (``os.pathsep``-separated),
the repository's ``.fonts/``, the usual system font folders, and the DejaVu
files that matplotlib ships (all a bare GPU machine may have). With nothing
found at all the renderer falls back to Pillow's built-in font and warns.
"""

from __future__ import annotations

import importlib.util
import os
import random
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

FONTS_ENV = "VLM_SUDOKU_FONTS"
REPO_FONTS = Path(__file__).resolve().parents[2] / ".fonts"
SYSTEM_DIRS = (
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    Path.home() / ".fonts",
    Path.home() / ".local/share/fonts",
)

PRINTED, HANDWRITING = "printed", "handwriting"


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    kind: str  # PRINTED or HANDWRITING
    license: str
    package: str  # the Debian package that ships it


_VERA = "Bitstream-Vera (DejaVu changes public domain)"
_OFL = "OFL-1.1"
_URW = "AGPL-3.0 with font exception"

#: file name -> what it is. Chosen to stay under ~9 MB in all (see docs/render.md).
CATALOGUE: dict[str, CatalogueEntry] = {
    "DejaVuSans.ttf": CatalogueEntry("DejaVu Sans", PRINTED, _VERA, "fonts-dejavu-core"),
    "DejaVuSans-Bold.ttf": CatalogueEntry("DejaVu Sans Bold", PRINTED, _VERA, "fonts-dejavu-core"),
    "DejaVuSerif.ttf": CatalogueEntry("DejaVu Serif", PRINTED, _VERA, "fonts-dejavu-core"),
    "DejaVuSerif-Bold.ttf": CatalogueEntry("DejaVu Serif Bold", PRINTED, _VERA, "fonts-dejavu-core"),
    "LiberationSans-Regular.ttf": CatalogueEntry("Liberation Sans", PRINTED, _OFL, "fonts-liberation2"),
    "LiberationSans-Bold.ttf": CatalogueEntry("Liberation Sans Bold", PRINTED, _OFL, "fonts-liberation2"),
    "LiberationSerif-Regular.ttf": CatalogueEntry("Liberation Serif", PRINTED, _OFL, "fonts-liberation2"),
    "LiberationSerif-Bold.ttf": CatalogueEntry("Liberation Serif Bold", PRINTED, _OFL, "fonts-liberation2"),
    "NimbusSans-Regular.otf": CatalogueEntry("Nimbus Sans", PRINTED, _URW, "fonts-urw-base35"),
    "NimbusSans-Bold.otf": CatalogueEntry("Nimbus Sans Bold", PRINTED, _URW, "fonts-urw-base35"),
    "NimbusSansNarrow-Regular.otf": CatalogueEntry("Nimbus Sans Narrow", PRINTED, _URW, "fonts-urw-base35"),
    "NimbusSansNarrow-Bold.otf": CatalogueEntry("Nimbus Sans Narrow Bold", PRINTED, _URW, "fonts-urw-base35"),
    "NimbusRoman-Regular.otf": CatalogueEntry("Nimbus Roman", PRINTED, _URW, "fonts-urw-base35"),
    "NimbusRoman-Bold.otf": CatalogueEntry("Nimbus Roman Bold", PRINTED, _URW, "fonts-urw-base35"),
    "C059-Roman.otf": CatalogueEntry("C059", PRINTED, _URW, "fonts-urw-base35"),
    "P052-Roman.otf": CatalogueEntry("P052", PRINTED, _URW, "fonts-urw-base35"),
    "URWGothic-Book.otf": CatalogueEntry("URW Gothic", PRINTED, _URW, "fonts-urw-base35"),
    "URWGothic-Demi.otf": CatalogueEntry("URW Gothic Demi", PRINTED, _URW, "fonts-urw-base35"),
    "Roboto-Regular.ttf": CatalogueEntry("Roboto", PRINTED, "Apache-2.0", "fonts-roboto-unhinted"),
    "Roboto-Bold.ttf": CatalogueEntry("Roboto Bold", PRINTED, "Apache-2.0", "fonts-roboto-unhinted"),
    "RobotoCondensed-Regular.ttf": CatalogueEntry("Roboto Condensed", PRINTED, "Apache-2.0", "fonts-roboto-unhinted"),
    "RobotoCondensed-Bold.ttf": CatalogueEntry("Roboto Condensed Bold", PRINTED, "Apache-2.0", "fonts-roboto-unhinted"),
    "OpenSans-Regular.ttf": CatalogueEntry("Open Sans", PRINTED, "Apache-2.0", "fonts-open-sans"),
    "OpenSans-Bold.ttf": CatalogueEntry("Open Sans Bold", PRINTED, "Apache-2.0", "fonts-open-sans"),
    "OpenSans-CondBold.ttf": CatalogueEntry("Open Sans Condensed Bold", PRINTED, "Apache-2.0", "fonts-open-sans"),
    "FreeSansBold.ttf": CatalogueEntry("FreeSans Bold", PRINTED, "GPL-3.0 with font exception", "fonts-freefont-ttf"),
    "Lato-Bold.ttf": CatalogueEntry("Lato Bold", PRINTED, _OFL, "fonts-lato"),
    "Caladea-Regular.ttf": CatalogueEntry("Caladea", PRINTED, _OFL, "fonts-crosextra-caladea"),
    "Cabin-Regular.otf": CatalogueEntry("Cabin", PRINTED, _OFL, "fonts-cabin"),
    "Cabin-Bold.otf": CatalogueEntry("Cabin Bold", PRINTED, _OFL, "fonts-cabin"),
    "Quicksand-Regular.ttf": CatalogueEntry("Quicksand", PRINTED, _OFL, "fonts-quicksand"),
    "Quicksand-Bold.ttf": CatalogueEntry("Quicksand Bold", PRINTED, _OFL, "fonts-quicksand"),
    "EBGaramond12-Regular.otf": CatalogueEntry("EB Garamond", PRINTED, _OFL, "fonts-ebgaramond"),
    "ComicNeue-Regular.otf": CatalogueEntry("Comic Neue", HANDWRITING, _OFL, "fonts-comic-neue"),
    "ComicNeue-Bold.otf": CatalogueEntry("Comic Neue Bold", HANDWRITING, _OFL, "fonts-comic-neue"),
    "Breip.ttf": CatalogueEntry("Breip", HANDWRITING, "OFL-1.0", "fonts-breip"),
    "BecauseWeBuild-Regular.otf": CatalogueEntry("Because We Build", HANDWRITING, _OFL, "fonts-bwht"),
    "BecauseWeConnect-Regular.otf": CatalogueEntry("Because We Connect", HANDWRITING, _OFL, "fonts-bwht"),
    "BecauseWeCreate-Regular.otf": CatalogueEntry("Because We Create", HANDWRITING, _OFL, "fonts-bwht"),
    "BecauseWeLearn-Regular.otf": CatalogueEntry("Because We Learn", HANDWRITING, _OFL, "fonts-bwht"),
    "BecauseWeMentor-Regular.otf": CatalogueEntry("Because We Mentor", HANDWRITING, _OFL, "fonts-bwht"),
    "BecauseWeOrganize-Regular.otf": CatalogueEntry("Because We Organize", HANDWRITING, _OFL, "fonts-bwht"),
    "Humor-Sans.ttf": CatalogueEntry("Humor Sans", HANDWRITING, _OFL, "fonts-humor-sans"),
    "Kristi.ttf": CatalogueEntry("Kristi", HANDWRITING, _OFL, "fonts-kristi"),
    "DancingScript-Regular.otf": CatalogueEntry("Dancing Script", HANDWRITING, _OFL, "fonts-dancingscript"),
    "KaushanScript-Regular.otf": CatalogueEntry("Kaushan Script", HANDWRITING, _OFL, "fonts-kaushanscript"),
}

BUILTIN = "pil-default"


@dataclass(frozen=True)
class Font:
    """One usable font file (``path`` is None for Pillow's built-in font)."""

    name: str
    kind: str
    license: str
    path: Path | None

    def get(self, size: float) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        return _load(self.path, max(4, int(round(size))))

    def is_serif_like(self) -> bool:
        return any(k in self.name for k in ("Serif", "Roman", "C059", "P052", "Garamond", "Caladea"))


@lru_cache(maxsize=512)
def _load(path: Path | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(str(path), size)


def matplotlib_font_dir() -> Path | None:
    """matplotlib's bundled TTF folder, found without importing matplotlib."""
    try:
        spec = importlib.util.find_spec("matplotlib")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    d = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"
    return d if d.is_dir() else None


def search_dirs(extra: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    dirs = [Path(p) for p in extra]
    dirs += [Path(p) for p in os.environ.get(FONTS_ENV, "").split(os.pathsep) if p]
    dirs += [REPO_FONTS, *SYSTEM_DIRS]
    mpl = matplotlib_font_dir()
    if mpl is not None:
        dirs.append(mpl)
    return dirs


def find_files(dirs: Sequence[Path]) -> dict[str, Path]:
    """Catalogue file name -> first path found, searching ``dirs`` in order (recursively)."""
    found: dict[str, Path] = {}
    for d in dirs:
        if not d.is_dir():
            continue
        for root, _subdirs, files in sorted(os.walk(d)):
            for f in sorted(files):
                if f in CATALOGUE and f not in found:
                    found[f] = Path(root) / f
    return found


class FontSet:
    """The fonts available here, split by kind, in a fixed (name) order so seeded picks repeat."""

    def __init__(self, fonts: Sequence[Font]) -> None:
        self.fonts = sorted(fonts, key=lambda f: f.name)
        self.builtin_only = all(f.path is None for f in self.fonts)
        printed = [f for f in self.fonts if f.kind == PRINTED]
        self.printed = printed or list(self.fonts)
        self.handwriting = [f for f in self.fonts if f.kind == HANDWRITING] or self.printed

    def pick(self, rng: random.Random, kind: str = PRINTED) -> Font:
        return rng.choice(self.handwriting if kind == HANDWRITING else self.printed)

    def pick_where(self, rng: random.Random, want) -> Font:
        choice = [f for f in self.printed if want(f)]
        return rng.choice(choice or self.printed)

    def __len__(self) -> int:
        return len(self.fonts)


def discover(extra_dirs: Iterable[str | os.PathLike[str]] = ()) -> FontSet:
    files = find_files(search_dirs(extra_dirs))
    fonts = [Font(CATALOGUE[f].name, CATALOGUE[f].kind, CATALOGUE[f].license, p) for f, p in files.items()]
    if not fonts:
        warnings.warn(
            "no catalogued fonts found (run `python -m vlm_sudoku.tools.render.collect_fonts` or set "
            f"{FONTS_ENV}); rendering with Pillow's built-in font only",
            stacklevel=2,
        )
        fonts = [Font(BUILTIN, PRINTED, "Pillow built-in", None)]
    return FontSet(fonts)


_DEFAULT: FontSet | None = None


def default_fonts() -> FontSet:
    """The font set of this process, discovered once."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = discover()
    return _DEFAULT
