"""Where things live in the repository and the build tree.

HOSTGEN_BUILD_DIR moves the board builds and calibrations elsewhere; caches and the
reference model stay in the repository's build/.
"""

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
BOARDS_DIR = REPO_ROOT / "boards"
LINKER_DIR = REPO_ROOT / "linker"
FIRMWARE_DIR = REPO_ROOT / "firmware"
MPY_DIR = PACKAGE_DIR / "mpy"
BUILD_ROOT = Path(os.environ.get("HOSTGEN_BUILD_DIR", REPO_ROOT / "build"))
CACHE_DIR = REPO_ROOT / "build" / ".cache"
REFERENCE_DIR = REPO_ROOT / "build" / "reference"
