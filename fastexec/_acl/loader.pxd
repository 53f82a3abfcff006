# The loader's table-management functions (acl_api.c).
cdef extern from "acl_api.h" nogil:
    int fx_acl_resolve(void* const* handles, int n_handles, char* missing, size_t missing_len)
    const char* fx_acl_missing_optional()
    int fx_acl_is_missing(const char* name)
    const char* fx_acl_library_path()
