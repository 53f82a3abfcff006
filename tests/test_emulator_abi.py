"""The emulator's ABI against its headers: every function declared under include/acl is exported
by the libraries a CANN program links with (libascendcl.so, libacl_dvpp.so), nothing else is,
and the headers compile as C and as C++."""
import ctypes
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fastexec import emulator

ACL_HEADERS = Path(emulator.include_dir()) / "acl"
DVPP_HEADER = ACL_HEADERS / "ops" / "acl_dvpp.h"


def declared_functions(paths) -> set:
    names = set()
    for path in paths:
        text = re.sub(r"/\*.*?\*/", " ", path.read_text(), flags=re.S)
        text = re.sub(r"//[^\n]*", " ", text)
        text = re.sub(r"^\s*#[^\n]*", " ", text, flags=re.M)   # the visibility macro's own definition
        for decl in re.findall(r"ACL_FUNC_VISIBILITY\s+([^;{]*?\))\s*;", text, flags=re.S):
            name = re.match(r"[^(]*?(\w+)\s*\(", decl)
            assert name, decl
            names.add(name.group(1))
    return names


def exported(lib: str) -> set:
    nm = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in nm.splitlines() if line.split()[-2] in ("T", "W")}


def test_header_parser_finds_the_declarations():
    names = declared_functions(sorted(ACL_HEADERS.rglob("*.h")))
    # spot checks across the headers, old and new
    for name in ("aclInit", "aclrtGetSocName", "aclmdlLoadFromFileWithMem", "aclrtMemcpy2d", "aclCreateTensorDesc",
                 "aclrtSetExceptionInfoCallback", "aclmdlCreateAndGetOpDesc", "acldvppMalloc", "aclrtGetDeviceSatMode"):
        assert name in names
    assert len(names) >= 160


def test_every_declared_function_is_exported():
    rt_headers = [p for p in sorted(ACL_HEADERS.rglob("*.h")) if p != DVPP_HEADER]
    rt, dvpp = declared_functions(rt_headers), declared_functions([DVPP_HEADER])
    assert sorted(rt - exported(emulator.library_path())) == []
    assert sorted(dvpp - exported(emulator.dvpp_library_path())) == []


def test_nothing_undeclared_is_exported():
    rt = exported(emulator.library_path())
    acl = {n for n in rt if not n.startswith("fxemu")}
    assert sorted(acl - declared_functions(sorted(ACL_HEADERS.rglob("*.h")))) == []
    fx = declared_functions([Path(emulator.include_dir()) / "fastexec" / "acl_emulator.h"])
    assert sorted({n for n in rt if n.startswith("fxemu")} ^ fx) == []
    assert exported(emulator.dvpp_library_path()) == {"acldvppMalloc", "acldvppFree"}


def test_dvpp_library_needs_libascendcl_next_to_it():
    dyn = subprocess.run(["readelf", "-d", emulator.dvpp_library_path()], capture_output=True, text=True, check=True).stdout
    assert "[libascendcl.so]" in dyn and "$ORIGIN" in dyn
    # loadable on its own: its dependency resolves through $ORIGIN
    code = f"import ctypes; l = ctypes.CDLL({emulator.dvpp_library_path()!r}); print(hasattr(l, 'acldvppMalloc'))"
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "True"


PROGRAM = """
#include "acl/acl.h"
#include "acl/ops/acl_dvpp.h"
int main(void) {
    aclrtExceptionInfoCallback cb = 0;
    aclrtFloatOverflowMode mode = ACL_RT_OVERFLOW_MODE_SATURATION;
    aclmdlInputAippType aipp = ACL_DATA_WITHOUT_AIPP;
    aclError (*take_address)(void *) = acldvppFree;   /* a module taking acldvppFree's address links */
    (void)cb; (void)mode; (void)aipp;
    return take_address == 0;
}
"""


@pytest.mark.parametrize("compiler,flags", [("cc", ["-x", "c", "-std=c11", "-pedantic"]), ("cc", ["-x", "c", "-std=c99"]),
                                            ("c++", ["-x", "c++", "-std=c++11", "-pedantic"]), ("c++", ["-x", "c++", "-std=c++17"])])
def test_headers_compile_and_link_as_c_and_cxx(tmp_path, compiler, flags):
    src = tmp_path / "prog.c"
    src.write_text(PROGRAM)
    exe = tmp_path / "prog"
    cmd = [compiler, *flags, "-Wall", "-Wextra", "-Werror", *emulator.cflags(), str(src), "-x", "none", "-o", str(exe),
           *emulator.libs(), "-lacl_dvpp"]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, f"{' '.join(cmd)}\n{build.stderr}"
    assert subprocess.run([str(exe)]).returncode == 0


def _device_count(env_extra) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_EMU_") and k != "ASCEND_RT_VISIBLE_DEVICES"}
    env.update(env_extra)
    code = ("import ctypes; from fastexec import emulator; lib = ctypes.CDLL(emulator.library_path()); n = ctypes.c_uint32(99);"
            "rc = lib.aclrtGetDeviceCount(ctypes.byref(n)); print(rc, n.value)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.split()
    assert out[0] == "0"
    return int(out[1])


@pytest.mark.parametrize("visible,count", [
    (None, 4), ("", 4), ("1,3", 2), ("0,1,2,3", 4), ("2", 1),
    ("1, 2,3", 1),      # reading stops at the entry holding a space
    ("1,3,8", 2),       # 8 is not a device of 4
    ("1,x,2", 1), ("x", 0), ("3,1", 1),   # not ascending: stops at 1
    ("1,1", 1), ("1,,2", 1), ("-1", 0),
])
def test_ascend_rt_visible_devices(visible, count):
    env = {"FASTEXEC_EMU_DEVICES": "4"}
    if visible is not None:
        env["ASCEND_RT_VISIBLE_DEVICES"] = visible
    assert _device_count(env) == count
