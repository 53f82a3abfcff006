# The loader: finds the ACL runtime library, resolves the function table (acl_api.c) once,
# thread-safely, and initialises ACL once per process. Included by fastexec/_core.pyx.
#
# Search order:
#   1. FASTEXEC_ACL_LIBRARY: an explicit path; nothing else is tried.
#   2. FASTEXEC_BACKEND=emulator: the bundled emulator only.
#   3. libascendcl.so on the normal library search path;
#   4. libascendcl.so under $ASCEND_HOME_PATH, $ASCEND_TOOLKIT_HOME and the default CANN prefixes;
#   5. the split libraries libacl_rt.so + libacl_mdl.so, in the same places;
#   6. with FASTEXEC_BACKEND=auto (the default) the bundled emulator, announced by a WARNING.
#   FASTEXEC_BACKEND=ascend stops after step 5 and refuses the emulator.

import logging
import os
import threading

from posix.dlfcn cimport dlclose, dlerror, dlopen, dlsym, RTLD_LOCAL, RTLD_NOW

from fastexec._acl.loader cimport fx_acl_is_missing, fx_acl_library_path, fx_acl_missing_optional, fx_acl_resolve

_log = logging.getLogger("fastexec")
_load_lock = threading.Lock()
cdef bint _loaded = False
cdef bint _initialized = False
_library_info = {}

CANN_PREFIXES = ("/usr/local/Ascend/cann", "/usr/local/Ascend/ascend-toolkit/latest")
BACKENDS = ("auto", "ascend", "emulator")


def _search_steps(str backend):
    """The candidate libraries in search order: (description, (file, ...), is_emulator_fallback)."""
    dirs = []
    for var in ("ASCEND_HOME_PATH", "ASCEND_TOOLKIT_HOME"):
        root = os.environ.get(var)
        if root:
            dirs.append((f"${var}", os.path.join(root, "lib64")))
    dirs += [(prefix, os.path.join(prefix, "lib64")) for prefix in CANN_PREFIXES]
    steps = [("libascendcl.so on the library search path", ("libascendcl.so",), False)]
    steps += [(f"libascendcl.so under {label}", (os.path.join(d, "libascendcl.so"),), False) for label, d in dirs]
    steps.append(("libacl_rt.so + libacl_mdl.so on the library search path", ("libacl_rt.so", "libacl_mdl.so"), False))
    steps += [(f"libacl_rt.so + libacl_mdl.so under {label}",
               (os.path.join(d, "libacl_rt.so"), os.path.join(d, "libacl_mdl.so")), False) for label, d in dirs]
    if backend == "auto":
        steps.append(("the bundled ACL emulator", (_emulator_library(),), True))
    return steps


def _emulator_library():
    from fastexec.emulator import library_path
    return library_path()


cdef str _dlerror():
    cdef const char* e = dlerror()
    return e.decode(errors="replace") if e != NULL else "unknown dlopen error"


cdef str _try_load(tuple files, bint refuse_emulator):
    """Open `files` and resolve the table from them. Returns None on success, else the reason."""
    cdef void* handles[2]
    cdef int n = 0
    cdef char missing[4096]
    cdef bytes path
    for f in files:
        if os.sep in f and not os.path.exists(f):
            for i in range(n):
                dlclose(handles[i])
            return "no such file"
        path = os.fsencode(f)
        handles[n] = dlopen(path, RTLD_NOW | RTLD_LOCAL)
        if handles[n] == NULL:
            reason = _dlerror()
            for i in range(n):
                dlclose(handles[i])
            return reason
        n += 1
    is_emulator = any(dlsym(handles[i], b"fxemuVersion") != NULL for i in range(n))
    if refuse_emulator and is_emulator:
        for i in range(n):
            dlclose(handles[i])
        return "this is fastexec's ACL emulator, not a CANN runtime"
    if fx_acl_resolve(handles, n, missing, sizeof(missing)) != 0:
        for i in range(n):
            dlclose(handles[i])
        return "missing required ACL functions: " + missing.decode()
    # Keep the handles open for the life of the process.
    _library_info.update(
        library=os.path.abspath(fx_acl_library_path().decode()),
        files=[os.path.abspath(f) if os.sep in f else f for f in files],
        emulator=bool(is_emulator),
        missing_optional=fx_acl_missing_optional().decode().split(),
    )
    return None


def _load():
    explicit = os.environ.get("FASTEXEC_ACL_LIBRARY")
    backend = os.environ.get("FASTEXEC_BACKEND", "auto").strip().lower() or "auto"
    if backend not in BACKENDS:
        raise FastexecError(f"FASTEXEC_BACKEND={backend!r} is not one of {', '.join(BACKENDS)}")
    if explicit:
        steps = [(f"FASTEXEC_ACL_LIBRARY={explicit}", (explicit,), False)]
    elif backend == "emulator":
        steps = [("the bundled ACL emulator (FASTEXEC_BACKEND=emulator)", (_emulator_library(),), False)]
    else:
        steps = _search_steps(backend)
    tried = []
    for label, files, fallback in steps:
        reason = _try_load(files, backend == "ascend" and not explicit)
        if reason is None:
            _library_info["backend"] = "emulator" if _library_info["emulator"] else "ascend"
            _library_info["found_by"] = label
            if fallback:
                _log.warning("no Ascend CANN runtime found (tried %s); using the bundled ACL emulator %s",
                             "; ".join(t for t, _ in tried), _library_info["library"])
            return
        tried.append((label, reason))
    lines = "\n".join(f"  - {label}: {reason}" for label, reason in tried)
    if explicit:
        what = f"FASTEXEC_ACL_LIBRARY={explicit} could not be used"
    elif backend == "ascend":
        what = "FASTEXEC_BACKEND=ascend, but no Ascend CANN runtime (libascendcl.so) was found on this machine"
    else:
        what = "no ACL runtime library could be loaded"
    raise AclLibraryNotFoundError(f"{what}; tried:\n{lines}", tuple(tried))


cpdef ensure_loaded():
    """Load the ACL library and resolve its functions (once per process)."""
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if not _loaded:
            _load()
            _loaded = True


_acl_config = None           # the acl.json given to init(), before aclInit ran
_acl_config_used = None      # what aclInit was given (an absolute path, or None)


def _config_path(path):
    return None if path is None else os.path.abspath(os.fspath(path))


cpdef ensure_initialized():
    """ensure_loaded() plus aclInit (once per process; never finalized while the process lives),
    with the configuration of init(acl_config=...), else of $FASTEXEC_ACL_CONFIG, else none."""
    global _initialized, _acl_config_used
    if _initialized:
        return
    ensure_loaded()
    cdef bytes raw
    with _load_lock:
        if not _initialized:
            path = _acl_config if _acl_config is not None else _config_path(os.environ.get("FASTEXEC_ACL_CONFIG") or None)
            if path is not None:
                raw = os.fsencode(path)
                rc = aclInit(raw)
            else:
                rc = aclInit(NULL)
            if rc != ACL_SUCCESS and rc != ACL_ERROR_REPEAT_INITIALIZE:
                check(rc, "aclInit")
            _acl_config_used = path
            _initialized = True


def init(acl_config=None):
    """Initialise ACL now (it otherwise happens on first use), reading `acl_config`, the path of
    an acl.json (its "dump", "profiler", ... sections; None: none, or $FASTEXEC_ACL_CONFIG).
    aclInit runs once per process, so the configuration is the process's: calling init() again
    with the configuration in force does nothing, with another one raises FastexecError."""
    global _acl_config
    wanted = _config_path(acl_config)
    if wanted is not None and not os.path.isfile(wanted):
        raise FileNotFoundError(f"init(): acl_config {acl_config!r} is not a file")
    with _load_lock:
        if _initialized:
            if acl_config is not None and wanted != _acl_config_used:
                used = f"with {_acl_config_used}" if _acl_config_used else "without a configuration"
                raise FastexecError(f"init(): ACL is already initialised {used} (aclInit runs once per process); "
                                    f"acl_config={acl_config!r} cannot take effect. Pass it (or set FASTEXEC_ACL_CONFIG) "
                                    "before anything uses the device")
            return
        if acl_config is not None:
            _acl_config = wanted
    ensure_initialized()


def acl_config():
    """The acl.json aclInit was given in this process (an absolute path), or None."""
    return _acl_config_used


cdef bint symbol_available(const char* name) noexcept:
    return not fx_acl_is_missing(name)


def backend_info():
    """What ACL runtime this process uses: a dict with ``library`` (path), ``emulator`` (bool),
    ``backend`` ("ascend" or "emulator"), ``found_by`` (the search step), ``soc``,
    ``device_count``, ``run_mode`` and ``missing_optional`` (optional functions the library
    lacks)."""
    ensure_initialized()
    cdef uint32_t count = 0
    cdef aclrtRunMode mode
    check(aclrtGetDeviceCount(&count), "aclrtGetDeviceCount")
    check(aclrtGetRunMode(&mode), "aclrtGetRunMode")
    cdef const char* soc = aclrtGetSocName()
    info = dict(_library_info)
    info["soc"] = soc.decode() if soc != NULL else None
    info["device_count"] = count
    info["run_mode"] = "host" if mode == ACL_HOST else "device"
    return info
