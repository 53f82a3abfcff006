"""Exceptions raised by fastexec.

Every failing ACL call raises :class:`AclError` (or a subclass that also derives from the
matching builtin exception), carrying the numeric code, its symbolic name, the ACL function
that failed and the runtime's own message (``aclGetRecentErrMsg``). All exceptions pickle.
"""
from __future__ import annotations


class FastexecError(Exception):
    """Base class of every fastexec exception."""


class AclLibraryNotFoundError(FastexecError, OSError):
    """No usable ACL runtime library was found; ``tried`` lists each place and why it failed."""

    def __init__(self, message: str, tried: tuple = ()):
        super().__init__(message)
        self.message = message
        self.tried = tuple(tried)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        return (type(self), (self.message, self.tried))


class ClosedError(FastexecError, RuntimeError):
    """An operation on an object that has been closed."""


class AclError(FastexecError):
    """A failing ACL call.

    Attributes: ``code`` (int), ``name`` (symbolic, e.g. ``ACL_ERROR_RT_MEMORY_ALLOCATION``),
    ``api`` (the ACL function), ``message`` (the runtime's text, may be empty).
    """

    def __init__(self, code: int, api: str, message: str = ""):
        from ._acl.error_codes import name_of

        self.code = int(code)
        self.api = api
        self.message = message or ""
        self.name = name_of(self.code)
        super().__init__(self.code, api, self.message)

    def __str__(self) -> str:
        from ._acl.error_codes import DESCRIPTIONS

        text = f"{self.api} failed with {self.name} ({self.code})"
        detail = self.message or DESCRIPTIONS.get(self.code, "")
        return f"{text}: {detail}" if detail else text

    def __reduce__(self):
        return (type(self), (self.code, self.api, self.message))


class AclMemoryError(AclError, MemoryError):
    """The runtime could not allocate memory."""


class AclTimeoutError(AclError, TimeoutError):
    """A synchronisation or execution timed out."""


class AclInvalidParamError(AclError, ValueError):
    """The runtime rejected an argument."""


class AclNotAvailableError(AclError, NotImplementedError):
    """The function or feature is not available on the loaded runtime or SoC."""


class AclFunctionNotFoundError(AclNotAvailableError):
    """The loaded ACL library does not export the function (e.g. ``aclmdlExecuteAsyncV2`` on
    server builds of CANN)."""

    def __init__(self, symbol: str, library: str):
        self.symbol = symbol
        self.library = library
        AclError.__init__(self, SYMBOL_MISSING, symbol, f"{symbol} is not exported by {library}")
        self.name = "FASTEXEC_SYMBOL_MISSING"

    def __reduce__(self):
        return (type(self), (self.symbol, self.library))


# The code the loader's stubs return for a missing optional symbol; no ACL code uses it.
SYMBOL_MISSING = 999999


def error_for(code: int, api: str, message: str = "") -> AclError:
    """The most specific AclError subclass for ``code``."""
    from ._acl import error_codes as ec

    if code in ec.OUT_OF_MEMORY:
        return AclMemoryError(code, api, message)
    if code in ec.TIMEOUT:
        return AclTimeoutError(code, api, message)
    if code in ec.INVALID_PARAM:
        return AclInvalidParamError(code, api, message)
    if code in ec.NOT_SUPPORTED:
        return AclNotAvailableError(code, api, message)
    return AclError(code, api, message)


class BatchError(FastexecError):
    """The device work of one batch failed.

    ``index``: the batch (position in the call's input, or the ticket for submit/result);
    ``error``: the AclError the runtime reported; ``completed``: what finished anyway so that
    nothing is lost — for ``imap`` a list of ``(index, outputs)`` of later batches that were in
    flight, for ``run`` the indexes of the batches whose rows of ``outputs`` are valid;
    ``outputs``: for ``run``, the output arrays.
    """

    def __init__(self, index: int, error: BaseException, completed=(), outputs=None):
        super().__init__(index, error)
        self.index = index
        self.error = error
        self.completed = list(completed)
        self.outputs = outputs

    def __str__(self) -> str:
        return f"batch {self.index} failed: {self.error}"

    def __reduce__(self):
        return (type(self), (self.index, self.error, self.completed, self.outputs))


class InUseError(FastexecError, RuntimeError):
    """A Device or Model cannot close while an open Executor uses it."""


class WaitTimeout(FastexecError, TimeoutError):
    """A wait given ``timeout=`` ran out. Nothing is lost: the batch (for ``result``) stays
    queued and its ticket valid; ``completed`` and ``outputs`` as for :class:`Interrupted`."""

    def __init__(self, message: str, completed=(), outputs=None):
        super().__init__(message)
        self.completed = list(completed)
        self.outputs = outputs

    def __reduce__(self):
        return (type(self), (self.args[0], self.completed, self.outputs))


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) arrived while the executor waited. The executor stays usable and what
    finished is kept: ``completed`` — for ``run`` the indexes of the batches whose rows of
    ``outputs`` are valid, for ``imap`` a list of ``(index, outputs)`` of batches that finished
    but were not yielded; for ``result`` empty (the ticket stays valid)."""

    def __init__(self, message: str = "interrupted", completed=(), outputs=None):
        super().__init__(message)
        self.completed = list(completed)
        self.outputs = outputs

    def __reduce__(self):
        return (type(self), (self.args[0] if self.args else "interrupted", self.completed, self.outputs))
