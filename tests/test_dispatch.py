"""The emulator's dispatch cost and the C loop floors it serves (bench/acl_loop.c, bench/task_cost.c),
built against the installed header and library like the C tests."""
import os
import re
import subprocess
from pathlib import Path

import pytest

from fastexec import emulator

BENCH = Path(__file__).resolve().parent.parent / "bench"
THROUGHPUT = re.compile(r"^throughput ([0-9.]+) samples/s \(([0-9.]+) batches/s\)  bound ([0-9.]+) samples/s  efficiency ([0-9.]+)$", re.M)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")

    def make(name):
        exe = out / name
        if not exe.exists():
            cmd = [os.environ.get("CC", "cc"), "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", *emulator.cflags(),
                   str(BENCH / f"{name}.c"), "-o", str(exe), *emulator.libs()]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr
        return str(exe)
    return make


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_EMU_")}
    env.update(extra)
    return env


def _run(args, **extra):
    return subprocess.run(args, capture_output=True, text=True, env=_env(**extra), timeout=300)


def test_acl_loop_serial_is_the_default_and_overlap_names_its_mode(build):
    exe, model = build("acl_loop"), emulator.sample_model("multi-io")
    serial = _run([exe, model, "50", "2"], FASTEXEC_EMU_FAST="1")
    assert serial.returncode == 0, serial.stderr
    assert "  mode " not in serial.stdout.splitlines()[0]   # unchanged: the header names no mode
    assert THROUGHPUT.search(serial.stdout)
    explicit = _run([exe, model, "50", "2", "--mode", "serial"], FASTEXEC_EMU_FAST="1")
    assert explicit.returncode == 0 and explicit.stdout.splitlines()[0] == serial.stdout.splitlines()[0]
    overlap = _run([exe, model, "50", "3", "--mode", "overlap"], FASTEXEC_EMU_FAST="1")
    assert overlap.returncode == 0, overlap.stderr
    assert "mode overlap" in overlap.stdout.splitlines()[0]
    assert overlap.stdout.splitlines()[-1] == THROUGHPUT.search(overlap.stdout).group(0)   # the last line, as in serial mode
    bad = _run([exe, model, "50", "2", "--mode", "sideways"])
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_task_cost_reports_every_case(build):
    proc = _run([build("task_cost"), emulator.sample_model("tiny"), "400", "16"])
    assert proc.returncode == 0, proc.stderr
    rows = re.findall(r"^(fast|timed) +(burst|single) +(copy h2d|copy d2h|record|wait|execute) +([0-9.]+) +([0-9.]+) +(-?[0-9.]+) +([0-9.]+)",
                      proc.stdout, re.M)
    assert len(rows) == 2 * 2 * 5, proc.stdout
    for mode, pattern, kind, cpu, host, workers, wall in rows:
        assert float(cpu) > 0 and float(wall) > 0, (mode, pattern, kind)
    assert re.search(r"^overruns \d+$", proc.stdout, re.M)
