"""Builds bench/task_cost.c against the bundled emulator and runs it: the emulator's host CPU
per stream task (copies, event records, event waits, executions), in fast mode and with real
modelled timing, for bursts (a busy worker) and single round trips (see the C file's header).

    python bench/task_cost.py [TASKS] [BURST]      (default: 20000 64)

The default emulator profile is used whatever FASTEXEC_EMU_* says; the figures are process CPU
time (every thread) per task, so they hold on a shared machine better than wall times do.
"""
import os
import subprocess
import sys
import tempfile

from acl_loop import build   # (bench/ is the script's own folder, first on sys.path)
from fastexec import emulator


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_EMU_")}
    with tempfile.TemporaryDirectory() as tmp:
        return subprocess.run([build(tmp, "task_cost"), emulator.sample_model("tiny"), *args], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
