"""Builds bench/acl_loop.c against the bundled emulator and runs it on a sample model.

    python bench/acl_loop.py [SAMPLE] [BATCHES] [DEPTH] [--mode serial|overlap]
                                                 (default: resnet50-int8 500 2, serial)

Serial mode runs copy-in, execute and copy-out on one stream (bound: the sum of the stages);
overlap mode runs them on three streams linked by events with the executor's six timing events
per batch (bound: the slowest stage). Both end with the same `throughput ... efficiency ...` line.

The `balanced` sample is sized for the emulator's `slow-link` profile, which this script
selects for it (FASTEXEC_EMU_PROFILE may override).
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from fastexec import emulator


def build(out_dir: str, name: str = "acl_loop") -> str:
    """Compile bench/NAME.c against the installed emulator's header and library."""
    exe = os.path.join(out_dir, name)
    src = Path(__file__).with_name(name + ".c")
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-std=c11", "-O2", *emulator.cflags(), str(src), "-o", exe, *emulator.libs()], check=True)
    return exe


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    sample = args[0] if args else "resnet50-int8"
    rest = args[1:] or ["500", "2"]
    env = dict(os.environ)
    if sample == "balanced":
        env.setdefault("FASTEXEC_EMU_PROFILE", "slow-link")
    with tempfile.TemporaryDirectory() as tmp:
        return subprocess.run([build(tmp), emulator.sample_model(sample), *rest], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
