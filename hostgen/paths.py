"""Where things live in the repository and the build tree."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BOARDS_DIR = REPO_ROOT / "boards"
LINKER_DIR = REPO_ROOT / "linker"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
BUILD_ROOT = REPO_ROOT / "build"
CACHE_DIR = BUILD_ROOT / ".cache"
