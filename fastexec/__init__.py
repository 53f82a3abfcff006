"""fastexec: pipelined, GIL-free execution of Ascend offline models over AscendCL.

``import fastexec`` is light: the ACL layer (``fastexec._core``, which imports numpy) loads on
first use of one of its names, and the ACL library itself on first use of the device.
The ACL emulator bundled for machines without an NPU lives in :mod:`fastexec.emulator`; the C
API is ``include/fastexec/fastexec.h``, under :func:`get_include`.
"""

__version__ = "0.1.0"

from .aipp import AippConfig, AippError
from .errors import (AclError, AclFunctionNotFoundError, AclInvalidParamError, AclLibraryNotFoundError,
                     AclMemoryError, AclNotAvailableError, AclTimeoutError, BatchError, ClosedError, FastexecError,
                     InUseError, Interrupted, WaitTimeout)

_CORE_NAMES = ("Device", "DeviceBuffer", "Event", "ExecConfig", "Executor", "Model", "PinnedBuffer", "Stream",
               "TensorSpec", "acl_config", "backend_info", "init")

__all__ = ["AippConfig", "AippError", "AclError", "AclFunctionNotFoundError", "AclInvalidParamError", "AclLibraryNotFoundError", "AclMemoryError",
           "AclNotAvailableError", "AclTimeoutError", "BatchError", "ClosedError", "FastexecError", "InUseError",
           "Interrupted", "WaitTimeout", "get_include", "naive_run", *_CORE_NAMES]


def get_include() -> str:
    """The directory holding fastexec/fastexec.h (the C API) and acl/acl.h."""
    from .emulator import include_dir

    return include_dir()


def _unbuilt_source_tree():
    """The message for a checkout whose extension is not built (None when it is, or when this
    is an installed copy)."""
    import glob
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    if not os.path.exists(os.path.join(here, "_core.pyx")):
        return None
    if glob.glob(os.path.join(here, "_core.*.so")) or glob.glob(os.path.join(here, "_core.*.pyd")):
        return None
    return (f"fastexec is being imported from its source tree ({here}), where its extension module "
            "fastexec._core is not built. Either build it in place: `pip install -e .` in that checkout; or run "
            "Python from another folder, so that the installed fastexec is imported instead")


_SOURCE_TREE = _unbuilt_source_tree()
if _SOURCE_TREE is not None:
    raise ImportError(_SOURCE_TREE)


def _import_core():
    try:
        from . import _core
    except ImportError as exc:
        message = _unbuilt_source_tree()
        if message is not None:
            raise ImportError(f"{message} (the original error: {exc})") from exc
        raise
    return _core


def __getattr__(name):
    if name == "naive_run":
        from .baseline import naive_run

        return naive_run
    if name in _CORE_NAMES:
        return getattr(_import_core(), name)
    raise AttributeError(f"module 'fastexec' has no attribute {name!r}")
