# The one check every ACL call goes through. Included by fastexec/_core.pyx.
#
#     check(aclrtMalloc(&p, n, policy), "aclrtMalloc")
#
# Success costs a compare and a return, with or without the GIL. Failure takes the GIL, reads
# aclGetRecentErrMsg() on the failing thread, and raises the most specific AclError.

from fastexec.errors import (AclError, AclFunctionNotFoundError, AclLibraryNotFoundError, ClosedError,
                             FastexecError, InUseError, error_for)


cdef object _acl_error(aclError rc, const char* api):
    """The exception for code `rc` from `api`, with the runtime's message (read on this thread)."""
    cdef const char* msg = aclGetRecentErrMsg()
    name = api.decode() if api != NULL else "ACL"
    if rc == FX_ACL_SYMBOL_MISSING:
        return AclFunctionNotFoundError(name, _library_info.get("library", "the ACL library"))
    return error_for(rc, name, msg.decode(errors="replace").strip() if msg != NULL else "")


cdef int raise_acl_error(aclError rc, const char* api) except -1 with gil:
    raise _acl_error(rc, api)


cdef inline int check(aclError rc, const char* api) except -1 nogil:
    if rc == ACL_SUCCESS:
        return 0
    return raise_acl_error(rc, api)
