# The one check every ACL call goes through. Included by fastexec/_core.pyx.
#
#     check(aclrtMalloc(&p, n, policy), "aclrtMalloc")
#
# Success costs a compare and a return, with or without the GIL. Failure takes the GIL, reads
# aclGetRecentErrMsg() on the failing thread, and raises the most specific AclError.

from fastexec.errors import (AclError, AclFunctionNotFoundError, AclLibraryNotFoundError, ClosedError,
                             FastexecError, error_for)


cdef int raise_acl_error(aclError rc, const char* api) except -1 with gil:
    cdef const char* msg
    name = api.decode()
    if rc == FX_ACL_SYMBOL_MISSING:
        raise AclFunctionNotFoundError(name, _library_info.get("library", "the ACL library"))
    msg = aclGetRecentErrMsg()
    raise error_for(rc, name, msg.decode(errors="replace").strip() if msg != NULL else "")


cdef inline int check(aclError rc, const char* api) except -1 nogil:
    if rc == ACL_SUCCESS:
        return 0
    return raise_acl_error(rc, api)
