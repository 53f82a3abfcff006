"""Runs the emulator's C tests (tests/c/test_*.c), built against the installed header and
library, one case per process.

FASTEXEC_TEST_WRAPPER prefixes every run, e.g.
FASTEXEC_TEST_WRAPPER="valgrind --error-exitcode=99 --leak-check=full -q".
"""
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from fastexec import emulator

C_DIR = Path(__file__).parent / "c"
SOURCES = sorted(C_DIR.glob("test_*.c"))
CASE = re.compile(r'^TEST(?:_ENV)?\((\w+)(?:,\s*"([^"]*)")?\)', re.M)


def _cases():
    for src in SOURCES:
        for name, env in CASE.findall(src.read_text()):
            yield pytest.param(src.stem, name, env, id=f"{src.stem}::{name}")


@pytest.fixture(scope="session")
def c_binaries(tmp_path_factory):
    out = tmp_path_factory.mktemp("c-tests")
    cc = os.environ.get("CC", "cc")
    binaries = {}
    for src in SOURCES:
        exe = out / src.stem
        cmd = [cc, "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", *emulator.cflags(),
               f"-I{C_DIR}", str(src), "-o", str(exe), *emulator.libs()]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr}"
        binaries[src.stem] = exe
    return binaries


def _environment(extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_EMU_")}
    env["FASTEXEC_EMU_FAST"] = "1"
    env["FXEMU_TEST_SAMPLES"] = str(Path(emulator.sample_model("tiny")).parent)
    for item in shlex.split(extra):
        key, _, value = item.partition("=")
        env[key] = value
    return env


def test_every_c_file_has_cases():
    assert SOURCES, "no C test files found"
    for src in SOURCES:
        assert CASE.search(src.read_text()), f"{src.name} defines no TEST cases"


def test_cases_listed_by_binary_match_the_source(c_binaries):
    for src in SOURCES:
        wrapper = shlex.split(os.environ.get("FASTEXEC_TEST_WRAPPER", ""))
        listed = subprocess.run(wrapper + [str(c_binaries[src.stem]), "--list"], capture_output=True, text=True,
                                check=True).stdout.split()
        assert sorted(listed) == sorted(name for name, _ in CASE.findall(src.read_text()))


@pytest.mark.parametrize("binary,case,env", list(_cases()))
def test_c(c_binaries, binary, case, env):
    wrapper = shlex.split(os.environ.get("FASTEXEC_TEST_WRAPPER", ""))
    proc = subprocess.run(wrapper + [str(c_binaries[binary]), case], env=_environment(env),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert f"ok {case}" in proc.stdout
