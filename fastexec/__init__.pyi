# Type stubs for the fastexec package: the names it exports (the extension's come from
# fastexec._core on first use; tests/test_stubs.py checks both lists against the package).
from ._core import (Device as Device, DeviceBuffer as DeviceBuffer, Event as Event, ExecConfig as ExecConfig,
                    Executor as Executor, Model as Model, PinnedBuffer as PinnedBuffer, Stream as Stream,
                    TensorSpec as TensorSpec, acl_config as acl_config, backend_info as backend_info,
                    init as init)
from .aipp import AippConfig as AippConfig, AippError as AippError
from .baseline import naive_run as naive_run
from .errors import (AclError as AclError, AclFunctionNotFoundError as AclFunctionNotFoundError,
                     AclInvalidParamError as AclInvalidParamError, AclLibraryNotFoundError as AclLibraryNotFoundError,
                     AclMemoryError as AclMemoryError, AclNotAvailableError as AclNotAvailableError,
                     AclTimeoutError as AclTimeoutError, BatchError as BatchError, ClosedError as ClosedError,
                     FastexecError as FastexecError, InUseError as InUseError, Interrupted as Interrupted,
                     WaitTimeout as WaitTimeout)

__version__: str
__all__: list[str]

def get_include() -> str: ...
