"""fastexec: pipelined, GIL-free execution of Ascend offline models over AscendCL.

``import fastexec`` is light: the ACL layer (``fastexec._core``, which imports numpy) loads on
first use of one of its names, and the ACL library itself on first use of the device.
The ACL emulator bundled for machines without an NPU lives in :mod:`fastexec.emulator`; the C
API is ``include/fastexec/fastexec.h``, under :func:`get_include`.
"""

__version__ = "0.1.0"

from .errors import (AclError, AclFunctionNotFoundError, AclInvalidParamError, AclLibraryNotFoundError,
                     AclMemoryError, AclNotAvailableError, AclTimeoutError, BatchError, ClosedError, FastexecError,
                     InUseError, Interrupted, WaitTimeout)

_CORE_NAMES = ("Device", "DeviceBuffer", "Event", "ExecConfig", "Executor", "Model", "PinnedBuffer", "Stream",
               "TensorSpec", "backend_info")

__all__ = ["AclError", "AclFunctionNotFoundError", "AclInvalidParamError", "AclLibraryNotFoundError", "AclMemoryError",
           "AclNotAvailableError", "AclTimeoutError", "BatchError", "ClosedError", "FastexecError", "InUseError",
           "Interrupted", "WaitTimeout", "get_include", "naive_run", *_CORE_NAMES]


def get_include() -> str:
    """The directory holding fastexec/fastexec.h (the C API) and acl/acl.h."""
    from .emulator import include_dir

    return include_dir()


def __getattr__(name):
    if name == "naive_run":
        from .baseline import naive_run

        return naive_run
    if name in _CORE_NAMES:
        from . import _core

        return getattr(_core, name)
    raise AttributeError(f"module 'fastexec' has no attribute {name!r}")
