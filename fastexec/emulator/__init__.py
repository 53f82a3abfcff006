"""The bundled AscendCL emulator: where it is, how to build against it, its sample models.

The emulator is a plain C shared library exporting the AscendCL ABI (``<acl/acl.h>``) plus a
few introspection and fault-injection functions (``<fastexec/acl_emulator.h>``). See
``docs/emulator.md`` for its behaviour and ``docs/model-format.md`` for its model files.
"""
from __future__ import annotations

import ctypes
import functools
from pathlib import Path

from .model_file import ModelDef, TensorDef, read_model, write_model

__all__ = [
    "ModelDef",
    "TensorDef",
    "cflags",
    "counters",
    "dvpp_library_path",
    "include_dir",
    "lib_dir",
    "libs",
    "library_path",
    "profile",
    "read_model",
    "sample_model",
    "write_model",
]

_HERE = Path(__file__).resolve().parent
# CANN's library names, in a folder of their own (so -L<lib_dir> -lascendcl finds the emulator).
LIB_DIR = _HERE / "lib"
LIBRARY_NAME = "libascendcl.so"
DVPP_LIBRARY_NAME = "libacl_dvpp.so"


def _built(name: str) -> str:
    path = LIB_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"the ACL emulator library is not built ({path} is missing); "
            "install the package with `pip install .` or `pip install -e .`"
        )
    return str(path)


def library_path() -> str:
    """Absolute path of the emulator's runtime library (``.../emulator/lib/libascendcl.so``)."""
    return _built(LIBRARY_NAME)


def dvpp_library_path() -> str:
    """Absolute path of the emulator's DVPP library (``.../emulator/lib/libacl_dvpp.so``)."""
    return _built(DVPP_LIBRARY_NAME)


def lib_dir() -> str:
    """The folder holding the emulator's ``libascendcl.so`` and ``libacl_dvpp.so``."""
    return str(Path(library_path()).parent)


def include_dir() -> str:
    """Directory holding ``acl/acl.h`` and ``fastexec/acl_emulator.h``."""
    for candidate in (_HERE.parent / "include", _HERE.parent.parent / "include"):
        if (candidate / "acl" / "acl.h").is_file():
            return str(candidate)
    raise FileNotFoundError("the fastexec include directory is missing from this installation")


def cflags() -> list[str]:
    """Compiler flags for a C program built against the ACL header."""
    return [f"-I{include_dir()}"]


def libs() -> list[str]:
    """Linker flags for a program linked against the emulator: the same ``-lascendcl`` a CANN
    program uses (add ``-lacl_dvpp`` for DVPP memory; it resolves in the same folder)."""
    libdir = lib_dir()
    return [f"-L{libdir}", f"-Wl,-rpath,{libdir}", "-lascendcl", "-pthread"]


def sample_model(name: str) -> str:
    """Path of a bundled sample model (``resnet50-int8``, ``balanced``, ``tiny``, ...)."""
    from .samples import sample_path

    return str(sample_path(name))


# ---------------------------------------------------------------- introspection (ctypes)

_FINDING_KINDS = 7


class _Counters(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_uint64)
        for name in (
            "device_allocations", "device_bytes", "host_allocations", "host_bytes",
            "registered_ranges", "streams", "events", "contexts", "devices_set", "models",
            "datasets", "data_buffers", "model_descs", "exec_configs", "tasks_run",
            "overruns", "findings",
        )
    ] + [("findings_by_kind", ctypes.c_uint64 * _FINDING_KINDS)] + [
        (name, ctypes.c_uint64) for name in ("tensor_descs", "load_configs", "aipp_sets")
    ]


class _Profile(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char * 64),
        ("soc_name", ctypes.c_char * 64),
        ("device_count", ctypes.c_uint32),
        ("h2d_gbps", ctypes.c_double),
        ("d2h_gbps", ctypes.c_double),
        ("d2d_gbps", ctypes.c_double),
        ("h2d_latency_us", ctypes.c_double),
        ("d2h_latency_us", ctypes.c_double),
        ("launch_us", ctypes.c_double),
        ("device_memory_bytes", ctypes.c_uint64),
        ("exec_async_v2", ctypes.c_int),
        ("host_register", ctypes.c_int),
        ("fast", ctypes.c_int),
        ("checked", ctypes.c_int),
        ("h2d_pageable_gbps", ctypes.c_double),
        ("d2h_pageable_gbps", ctypes.c_double),
        ("alloc_us", ctypes.c_double),
        ("strict", ctypes.c_int),
    ]


@functools.lru_cache(maxsize=None)
def _lib() -> ctypes.CDLL:
    lib = ctypes.CDLL(library_path())
    lib.fxemuGetCounters.argtypes = [ctypes.POINTER(_Counters)]
    lib.fxemuGetProfile.argtypes = [ctypes.POINTER(_Profile)]
    return lib


def counters() -> dict:
    """Live resource counts and event counters of the emulator loaded in this process."""
    c = _Counters()
    _lib().fxemuGetCounters(ctypes.byref(c))
    out = {name: getattr(c, name) for name, _ in _Counters._fields_ if name != "findings_by_kind"}
    out["findings_by_kind"] = list(c.findings_by_kind)
    return out


def profile() -> dict:
    """The emulated device profile in force in this process."""
    p = _Profile()
    _lib().fxemuGetProfile(ctypes.byref(p))
    out = {name: getattr(p, name) for name, _ in _Profile._fields_}
    out["name"] = p.name.decode()
    out["soc_name"] = p.soc_name.decode()
    for flag in ("exec_async_v2", "host_register", "fast", "checked", "strict"):
        out[flag] = bool(out[flag])
    return out
