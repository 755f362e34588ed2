"""A temporary directory that belongs to one object and goes with it, and the harness
directory of generated code that is compiled with gcc and run under the MicroPython unix port."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from hostgen.errors import HostgenError
from hostgen.util.tools import micropython_executable


class WorkDirectory:
    """Owns `self.workdir`, a fresh temporary directory removed by close() (or at the end of a `with`)."""

    def __init__(self, prefix: str):
        self.workdir = Path(tempfile.mkdtemp(prefix=prefix))

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class HarnessDirectory(WorkDirectory):
    """A work directory of generated sources, compiled with gcc or run by a runner script on the unix port."""

    def compile_c(self, sources: list[Path], binary_name: str, flags: list[str]) -> Path:
        binary = self.workdir / binary_name
        result = subprocess.run(["gcc", *flags, "-I", str(self.workdir), *map(str, sources), "-o", str(binary)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            errors = [line for line in result.stderr.splitlines() if "error" in line] or result.stderr.splitlines() or ["?"]
            raise HostgenError(f"the generated C does not compile with gcc {' '.join(flags)}: {errors[0].strip()}")
        return binary

    def run_micropython(self, runner: Path, heap_bytes: int, args: list[str], timeout: float, what: str) -> str:
        """The runner's stdout; a failure names the heap and `what` was running."""
        command = [micropython_executable(), "-X", f"heapsize={heap_bytes}", str(runner), str(self.workdir), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
            raise HostgenError(f"MicroPython ({heap_bytes}-byte heap) failed on {what}: {detail[-1] if detail else result.returncode}")
        return result.stdout
