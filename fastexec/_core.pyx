# cython: language_level=3, embedsignature=True, boundscheck=False, wraparound=False
"""fastexec's extension module: the ACL layer and the runtime objects.

Layers, one file each, compiled into this one module so that the ACL function table has one
owner and one copy:

- ``_acl/errors.pxi``: ``check()``, the one error check every ACL call goes through;
- ``_acl/loader.pxi``: finds the ACL library, resolves the table, ``backend_info()``;
- ``runtime.pxi``: Device, Stream, Event, DeviceBuffer, PinnedBuffer, Model, ExecConfig;
- ``executor.pxi``: the pipelined Executor;
- ``capi.pxi``: the C API over it (include/fastexec/fastexec.h), as the capsule ``_C_API``.
"""

include "_acl/errors.pxi"
include "_acl/loader.pxi"
include "runtime.pxi"
include "executor.pxi"
include "capi.pxi"
