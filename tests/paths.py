"""Where the shared data lives, relative to the checkout (../shared)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PUZZLES = SHARED / "data" / "puzzles"
PHOTOS = SHARED / "data" / "photos_train"
