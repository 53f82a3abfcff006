# cython: language_level=3, embedsignature=True, boundscheck=False, wraparound=False
"""fastexec's extension module: the ACL layer and the runtime objects.

Layers, one file each, compiled into this one module so that the ACL function table has one
owner and one copy:

- ``_acl/errors.pxi``: ``check()``, the one error check every ACL call goes through;
- ``_acl/loader.pxi``: finds the ACL library, resolves the table, ``backend_info()``;
- ``runtime.pxi``: Device, Stream, Event, DeviceBuffer, PinnedBuffer, Model, ExecConfig;
- ``aipp.pxi``: AippParams, an AippConfig as the runtime's dynamic AIPP parameter set;
- ``stats.pxi``: the executor's figures;
- ``trace.pxi``: the pipeline's trace (per-batch device and host times, a bounded ring);
- ``pipeline.pxi``: the pipeline core, nogil over the C state of ``_pipeline.pxd``;
- ``executor.pxi``: the Executor, its Python front ends over the core;
- ``capi.pxi``: the C API over the same core (include/fastexec/fastexec.h), as the capsule ``_C_API``.
"""

include "_acl/errors.pxi"
include "_acl/loader.pxi"
include "runtime.pxi"
include "aipp.pxi"
include "stats.pxi"
include "trace.pxi"
include "pipeline.pxi"
include "executor.pxi"
include "capi.pxi"
