"""The executor, C API and CLI suites again, under the emulator's CANN-strict mode
(FASTEXEC_EMU_STRICT=1: immediate poisoned frees, use-after-free findings, CANN's current-context
checks, no aliasing of destroyed handles; docs/emulator.md "Strict mode"), in a subprocess so
that this process keeps the default mode. None of these files tests the default mode's own
leniencies, so all of them run; the emulator's own suites (C, Python, ABI) test both modes
themselves and are not repeated here."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SUITES = ["test_executor.py", "test_pipeline_core.py", "test_capi.py", "test_cli_run.py", "test_cli_bench.py"]


@pytest.mark.skipif(os.environ.get("FASTEXEC_EMU_STRICT", "0") != "0", reason="this whole session already runs in strict mode")
def test_suites_pass_in_strict_mode():
    env = dict(os.environ, FASTEXEC_EMU_STRICT="1", PYTHONPATH=os.pathsep.join(
        p for p in (str(TESTS / "strict"), os.environ.get("PYTHONPATH", "")) if p))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "strict_findings",
           *(str(TESTS / s) for s in SUITES)]
    proc = subprocess.run(cmd, cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=540)
    lines = proc.stdout.strip().splitlines()
    summary = "\n".join(lines[-25:])
    print(f"strict-mode run ({' '.join(SUITES)}):\n{summary}")
    assert proc.returncode == 0, f"the strict-mode run failed:\n{proc.stdout[-20000:]}\n{proc.stderr[-5000:]}"
    report = re.search(r"strict-mode emulator: strict=(\w+) use_after_free_findings=(\d+)", proc.stdout)
    assert report, "the strict_findings plugin did not report"
    assert report.group(1) == "True"
    assert report.group(2) == "0", "a queued task used memory freed before it ran (strict mode)"
    assert re.search(r"\d+ passed", lines[-1])
