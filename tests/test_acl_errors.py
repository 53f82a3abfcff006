"""ACL failures become AclError (or the subclass that also derives from the matching builtin),
carrying the code, its symbolic name, the failing ACL function and aclGetRecentErrMsg().

The device cases provoke real failures through fastexec's objects on the bundled emulator.
"""
import ctypes
import gc
import pickle
import warnings

import pytest

import fastexec
from fastexec import emulator
from fastexec._acl import error_codes as ec
from fastexec.errors import (SYMBOL_MISSING, AclError, AclFunctionNotFoundError, AclInvalidParamError,
                             AclLibraryNotFoundError, AclMemoryError, AclNotAvailableError, AclTimeoutError, ClosedError,
                             FastexecError, error_for)


def roundtrip(err):
    return [pickle.loads(pickle.dumps(err, protocol)) for protocol in range(pickle.HIGHEST_PROTOCOL + 1)]


def assert_pickles(err):
    for back in roundtrip(err):
        assert type(back) is type(err)
        assert (back.code, back.name, back.api, back.message, str(back), back.args) == \
               (err.code, err.name, err.api, err.message, str(err), err.args)


def assert_str_has_everything(err):
    text = str(err)
    for part in (err.api, err.name, str(err.code), err.message):
        assert part in text, (part, text)


# ---------------------------------------------------------------- failures from the runtime

def test_missing_model_file(device, tmp_path):
    path = tmp_path / "no-such-model.om"
    with pytest.raises(AclError) as info:
        fastexec.Model(str(path), device)
    err = info.value
    assert err.code == 145002
    assert err.name == "ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID"
    assert err.api == "aclmdlLoadFromFile"
    assert str(path) in err.message
    assert_str_has_everything(err)
    assert_pickles(err)


def test_corrupt_model_bytes(device):
    data = (b"fastexec-emulator-model 1\nname broken\ninput x float32 ND 1,16\n"
            b"bogus line\noutput y float32 ND 1,16\nkernel identity\ncompute_us 5\n")
    with pytest.raises(AclError) as info:
        fastexec.Model(data, device)
    err = info.value
    assert (err.code, err.name, err.api) == (100013, "ACL_ERROR_PARSE_MODEL", "aclmdlLoadFromMem")
    assert "line 4" in err.message and "bogus" in err.message
    assert type(err) is AclError
    assert_str_has_everything(err)
    assert_pickles(err)


def test_corrupt_model_file(device, tmp_path):
    path = tmp_path / "garbage.om"
    path.write_bytes(b"this is not a model\n")
    with pytest.raises(AclError) as info:
        fastexec.Model(str(path), device)
    err = info.value
    assert (err.code, err.api) == (100013, "aclmdlLoadFromFile")
    assert "line 1" in err.message


def test_out_of_device_memory(device):
    free_before, total = device.memory_info()
    with pytest.raises(AclMemoryError) as info:
        fastexec.DeviceBuffer(device, 1 << 40)
    err = info.value
    assert isinstance(err, MemoryError) and isinstance(err, AclError) and isinstance(err, FastexecError)
    assert (err.code, err.name, err.api) == (207001, "ACL_ERROR_RT_MEMORY_ALLOCATION", "aclrtMalloc")
    assert err.message
    assert_str_has_everything(err)
    assert_pickles(err)
    assert device.memory_info() == (free_before, total)
    with fastexec.DeviceBuffer(device, 4096) as buf:  # the device still allocates afterwards
        assert buf.nbytes == 4096


def _stall(stream, ms):
    lib = ctypes.CDLL(emulator.library_path())
    lib.fxemuStallStream.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.fxemuStallStream.restype = ctypes.c_int
    assert lib.fxemuStallStream(ctypes.c_void_p(stream.handle_address), ms) == 0


def test_stream_and_event_synchronize_timeouts(device):
    info = fastexec.backend_info()
    if not info["emulator"] or info["library"] != emulator.library_path():
        pytest.skip("needs the bundled emulator loaded in this process")
    with fastexec.Stream(device) as stream, fastexec.Event(device) as event:
        _stall(stream, 500)
        event.record(stream)
        with pytest.raises(AclTimeoutError) as info:
            stream.synchronize(timeout_ms=1)
        err = info.value
        assert isinstance(err, TimeoutError) and isinstance(err, AclError)
        assert (err.code, err.name, err.api) == (507046, "ACL_ERROR_RT_STREAM_SYNC_TIMEOUT", "aclrtSynchronizeStreamWithTimeout")
        assert_str_has_everything(err)
        assert_pickles(err)

        with pytest.raises(AclTimeoutError) as info:
            event.synchronize(timeout_ms=1)
        assert (info.value.code, info.value.api) == (507047, "aclrtSynchronizeEventWithTimeout")
        assert not event.query()

        stream.synchronize()  # waits for the stall; the stream is healthy afterwards
        assert stream.query() and event.query()
        event.synchronize(timeout_ms=1)
        stream.synchronize(timeout_ms=1)


def test_runtime_rejected_option_is_invalid_param(device):
    with fastexec.ExecConfig(stream_sync_timeout_ms=50) as cfg:
        with pytest.raises(AclInvalidParamError) as info:
            cfg.set("work_addr", 0)  # the default profile (Ascend310P3) supports only the timeouts
        err = info.value
        assert isinstance(err, ValueError) and isinstance(err, AclError)
        assert (err.code, err.name, err.api) == (100000, "ACL_ERROR_INVALID_PARAM", "aclmdlSetExecConfigOpt")
        assert "Ascend310P3" in err.message
        assert_str_has_everything(err)
        assert_pickles(err)
        assert cfg.options == {"stream_sync_timeout_ms": 50}  # the failed option was not recorded
        cfg.set("event_sync_timeout_ms", 20)  # the config is still usable
        assert cfg.options == {"stream_sync_timeout_ms": 50, "event_sync_timeout_ms": 20}


def test_runtime_rejected_timeout_is_invalid_param(device):
    with fastexec.Stream(device) as stream:
        with pytest.raises(AclInvalidParamError) as info:
            stream.synchronize(timeout_ms=-5)
        err = info.value
        assert isinstance(err, ValueError)
        assert (err.code, err.name, err.api) == (107000, "ACL_ERROR_RT_PARAM_INVALID", "aclrtSynchronizeStreamWithTimeout")
        assert "-5" in err.message


@pytest.mark.parametrize("options", [{"work_addr": 0}, {"stream_sync_timeout_ms": -2}])
def test_exec_config_constructor_failure_releases_the_handle(no_leaks, options):
    before = emulator.counters()["exec_configs"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError) as info:
            fastexec.ExecConfig(**options)
        # the half-built config must be released by the failing constructor itself, not left
        # alive with the exception's traceback and then to the garbage collector (with an
        # "unclosed ExecConfig" ResourceWarning)
        assert emulator.counters()["exec_configs"] == before
        del info
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_error_messages_belong_to_the_failing_call(device, tmp_path):
    with pytest.raises(AclMemoryError) as oom:
        fastexec.DeviceBuffer(device, 1 << 40)
    with pytest.raises(AclError) as missing:
        fastexec.Model(str(tmp_path / "m.om"), device)
    assert "aclrtMalloc" in oom.value.message and "m.om" not in oom.value.message
    assert "aclmdlLoadFromFile" in missing.value.message and "m.om" in missing.value.message


def test_closed_object_raises_closed_error(device):
    stream = fastexec.Stream(device)
    stream.close()
    with pytest.raises(ClosedError) as info:
        stream.synchronize()
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, FastexecError)
    back = pickle.loads(pickle.dumps(info.value))
    assert type(back) is ClosedError and str(back) == str(info.value)


# ---------------------------------------------------------------- the classes

CATEGORIES = [
    (ec.OUT_OF_MEMORY, AclMemoryError, MemoryError),
    (ec.TIMEOUT, AclTimeoutError, TimeoutError),
    (ec.INVALID_PARAM, AclInvalidParamError, ValueError),
    (ec.NOT_SUPPORTED, AclNotAvailableError, NotImplementedError),
]


@pytest.mark.parametrize("codes, cls, builtin", CATEGORIES, ids=lambda x: getattr(x, "__name__", None))
def test_error_for_picks_the_subclass_of_each_category(codes, cls, builtin):
    assert codes
    for code in sorted(codes):
        err = error_for(code, "aclSomething", "details")
        assert type(err) is cls, (code, type(err))
        assert isinstance(err, builtin) and isinstance(err, AclError)
        assert (err.code, err.name, err.api, err.message) == (code, ec.NAMES[code], "aclSomething", "details")


def test_error_for_uncategorised_codes_is_plain_acl_error():
    categorised = set().union(*(codes for codes, _, _ in CATEGORIES))
    others = [code for code in ec.NAMES if code not in categorised and code != 0]
    assert 145002 in others and 100013 in others
    for code in others:
        err = error_for(code, "aclX")
        assert type(err) is AclError
        assert not isinstance(err, (MemoryError, TimeoutError, ValueError, NotImplementedError))


def test_str_contains_api_name_code_and_message():
    err = AclError(207001, "aclrtMalloc", "aclrtMalloc: 1099511627776 bytes requested, 25769803776 free")
    text = str(err)
    assert_str_has_everything(err)
    assert text.index("aclrtMalloc") == 0


def test_str_without_message_uses_the_description():
    err = AclError(507046, "aclrtSynchronizeStreamWithTimeout")
    assert err.message == ""
    text = str(err)
    for part in ("aclrtSynchronizeStreamWithTimeout", "ACL_ERROR_RT_STREAM_SYNC_TIMEOUT", "507046", ec.DESCRIPTIONS[507046]):
        assert part in text


@pytest.mark.parametrize("code", [123456, 999998, -7, 1])
def test_unknown_codes(code):
    err = error_for(code, "aclFoo", "what happened")
    assert type(err) is AclError
    assert err.name == f"UNKNOWN_ACL_ERROR_{code}"
    assert_str_has_everything(err)
    assert_pickles(err)


def test_negative_code_minus_one():
    err = error_for(-1, "aclrtGetExceptionInfo", "bad record")
    assert type(err) is AclError
    assert (err.code, err.name) == (-1, "ACL_ERROR_INVALID_EXCEPTION_INFO")
    assert "(-1)" in str(err)
    assert_str_has_everything(err)
    assert_pickles(err)


def test_code_is_an_int():
    import numpy as np

    err = AclError(np.int32(100000), "aclX")
    assert type(err.code) is int and err.name == "ACL_ERROR_INVALID_PARAM"


ALL_ACL_ERRORS = [
    AclError(145002, "aclmdlLoadFromFile", "cannot open model file '/x.om'"),
    AclError(500000, "aclmdlCreateDesc"),
    AclMemoryError(207001, "aclrtMalloc", "out of memory"),
    AclTimeoutError(507046, "aclrtSynchronizeStreamWithTimeout", "timed out after 1 ms"),
    AclInvalidParamError(100000, "aclmdlSetExecConfigOpt", "attribute 2 is not supported"),
    AclNotAvailableError(200001, "aclmdlExecuteAsyncV2", "not supported on Ascend310P3"),
    AclFunctionNotFoundError("aclmdlExecuteAsyncV2", "/usr/local/Ascend/ascend-toolkit/latest/lib64/libascendcl.so"),
]


@pytest.mark.parametrize("err", ALL_ACL_ERRORS, ids=lambda e: type(e).__name__)
def test_every_acl_error_class_pickles(err):
    assert_pickles(err)
    assert_str_has_everything(err)
    assert isinstance(err, FastexecError)
    if isinstance(err, AclFunctionNotFoundError):
        assert err.code == SYMBOL_MISSING
        for back in roundtrip(err):
            assert (back.symbol, back.library) == (err.symbol, err.library)


def test_library_not_found_and_base_errors_pickle():
    tried = (("libascendcl.so on the library search path", "cannot open shared object file"),
             ("libascendcl.so under /usr/local/Ascend/ascend-toolkit/latest", "no such file"))
    err = AclLibraryNotFoundError("no ACL runtime library could be loaded; tried: ...", tried)
    assert isinstance(err, OSError) and isinstance(err, FastexecError)
    for back in roundtrip(err):
        assert type(back) is AclLibraryNotFoundError
        assert (str(back), back.message, back.tried) == (str(err), err.message, tried)
    for plain in (FastexecError("something"), ClosedError("Stream is closed")):
        for back in roundtrip(plain):
            assert type(back) is type(plain) and str(back) == str(plain)


def test_exceptions_are_exported_from_the_package():
    for name in ("AclError", "AclFunctionNotFoundError", "AclInvalidParamError", "AclLibraryNotFoundError",
                 "AclMemoryError", "AclNotAvailableError", "AclTimeoutError", "ClosedError", "FastexecError"):
        assert getattr(fastexec, name) is getattr(fastexec.errors, name)
