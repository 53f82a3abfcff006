"""Builds and runs bench/timer_precision.c against the bundled emulator (see its header).

    python bench/timer_precision.py
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from fastexec import emulator


def main() -> int:
    src = Path(__file__).with_name("timer_precision.c")
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "timer_precision")
        cc = os.environ.get("CC", "cc")
        subprocess.run([cc, "-std=c11", "-O2", *emulator.cflags(), str(src), "-o", exe, *emulator.libs()], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_EMU_")}
        return subprocess.run([exe], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
