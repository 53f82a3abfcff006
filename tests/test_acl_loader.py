"""The ACL loader (fastexec/_acl/loader.pxi): library search order, forced backends, missing
libraries and symbols, backend_info(), thread-safe one-time loading.

The library is loaded once per process, so every case runs in a fresh subprocess with a
controlled environment: every FASTEXEC_* and ASCEND_* variable dropped, then set as the case
needs. Fake "CANN installs" are copies of the bundled emulator placed where a CANN runtime
would be; each case checks which file was loaded, the search step that found it, and that the
library works (loads and unloads the `tiny` sample) and has nothing left allocated afterwards.
"""
import ctypes.util
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fastexec
from fastexec import emulator
from fastexec.errors import AclError, AclFunctionNotFoundError, AclNotAvailableError, FastexecError

from conftest import LIVE_COUNTERS

ROOT = Path(__file__).resolve().parents[1]
EMULATOR_SRC = Path(emulator.__file__).resolve().parent / "src"
CANN_DEFAULT_INSTALL = "/usr/local/Ascend/ascend-toolkit/latest"


def _acl_api_names(macro: str) -> list:
    text = (ROOT / "fastexec" / "_acl" / "acl_api.h").read_text()
    body = re.search(rf"#define {macro}\(X\)(.*?)\n\n", text, re.S).group(1)
    return re.findall(r"X\((\w+)\)", body)


REQUIRED = _acl_api_names("FX_ACL_REQUIRED")
OPTIONAL = _acl_api_names("FX_ACL_OPTIONAL")


def _real_cann_present() -> bool:
    if ctypes.util.find_library("ascendcl") or ctypes.util.find_library("acl_rt"):
        return True
    prefixes = [os.environ.get("ASCEND_HOME_PATH"), os.environ.get("ASCEND_TOOLKIT_HOME"), "/usr/local/Ascend"]
    return any(p and os.path.exists(p) for p in prefixes)


requires_no_cann = pytest.mark.skipif(_real_cann_present(), reason="a real CANN runtime is installed on this machine")


# ---------------------------------------------------------------- subprocess harness

PRELUDE = textwrap.dedent(
    """
    import ctypes, json, logging, os, pickle, sys
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG, format="LOG %(levelname)s %(name)s: %(message)s")
    import fastexec
    from fastexec import emulator

    LIVE = {live!r}

    def live_counters(path):
        # counters of the emulator instance fastexec actually loaded (not a second copy)
        lib = ctypes.CDLL(path)
        c = emulator._Counters()
        lib.fxemuGetCounters(ctypes.byref(c))
        return {{k: getattr(c, k) for k in LIVE}}

    def exercise():
        # a real call through the loaded library: load the tiny sample, describe it, unload it
        with fastexec.Device(0) as dev:
            model = fastexec.Model(emulator.sample_model("tiny"), dev)
            try:
                return [[t.name, list(t.shape), str(t.dtype)] for t in model.inputs + model.outputs]
            finally:
                model.close()

    def report(**kw):
        print("RESULT " + json.dumps(kw))

    def report_error(e):
        report(type=type(e).__name__, mro=[c.__name__ for c in type(e).__mro__], text=str(e),
               tried=[list(t) for t in getattr(e, "tried", ())],
               roundtrip=str(pickle.loads(pickle.dumps(e))) == str(e))
    """
).format(live=list(LIVE_COUNTERS))

USE_LIBRARY = PRELUDE + textwrap.dedent(
    """
    info = fastexec.backend_info()
    tensors = exercise()
    report(info=info, tensors=tensors, live=live_counters(info["library"]))
    """
)

EXPECT_LOAD_ERROR = PRELUDE + textwrap.dedent(
    """
    try:
        fastexec.backend_info()
    except Exception as e:
        report_error(e)
    else:
        report(type=None)
    """
)

NO_CANN = re.compile(r"no (Ascend )?CANN runtime", re.I)
TINY_TENSORS = [["x", [1, 16], "float32"], ["y", [1, 16], "float32"]]


def child_env(ld_path=None, **variables):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTEXEC_", "ASCEND_"))}
    env["FASTEXEC_EMU_FAST"] = "1"
    if ld_path is not None:
        env["LD_LIBRARY_PATH"] = os.pathsep.join([str(ld_path)] + ([env["LD_LIBRARY_PATH"]] if env.get("LD_LIBRARY_PATH") else []))
    env.update({k: str(v) for k, v in variables.items()})
    return env


def run_child(code, env, cwd):
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"child failed (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, proc.stdout + proc.stderr
    return json.loads(lines[0][len("RESULT "):]), proc.stderr


def log_lines(stderr, level=None):
    return [line for line in stderr.splitlines() if line.startswith("LOG ") and (level is None or line.startswith(f"LOG {level} "))]


def assert_loaded(result, expected_file, *found_by_words):
    info = result["info"]
    assert os.path.isabs(info["library"]), info
    assert os.path.realpath(info["library"]) == os.path.realpath(expected_file)
    for word in found_by_words:
        assert word in info["found_by"], info["found_by"]
    assert info["emulator"] is True and info["backend"] == "emulator"  # every fake install is the emulator
    assert info["soc"] == "Ascend310P3" and info["device_count"] == 1
    assert info["missing_optional"] == []
    assert result["tensors"] == TINY_TENSORS
    assert result["live"] == {k: 0 for k in LIVE_COUNTERS}


def emulator_copy(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(emulator.library_path(), target)
    return target


def fake_cann(root: Path) -> Path:
    """A CANN-like install: root/lib64/libascendcl.so (really the emulator). Returns the library."""
    return emulator_copy(root / "lib64" / "libascendcl.so")


def split_install(libdir: Path) -> tuple:
    """libacl_rt.so (the emulator) and libacl_mdl.so, a shim linked against it, in libdir."""
    rt = emulator_copy(libdir / "libacl_rt.so")
    src = libdir / "acl_mdl_shim.c"
    src.write_text("int fx_test_acl_mdl_shim(void) { return 1; }\n")
    mdl = libdir / "libacl_mdl.so"
    subprocess.run(["cc", "-shared", "-fPIC", str(src), "-o", str(mdl), f"-L{libdir}", "-lacl_rt", f"-Wl,-rpath,{libdir}"],
                   check=True, capture_output=True, text=True)
    return rt, mdl


def emulator_build_command(out: Path, *defines) -> list:
    cmd = ["cc", "-std=c11", "-O2", "-fPIC", "-shared", "-pthread", "-fvisibility=hidden", *defines,
           f"-I{emulator.include_dir()}", f"-I{EMULATOR_SRC}", *sorted(map(str, EMULATOR_SRC.glob("*.c"))), "-lm", "-o", str(out)]
    return cmd


@pytest.fixture(scope="module")
def variant_libraries(tmp_path_factory):
    """Emulator builds lacking one optional symbol each, compiled in parallel once per module."""
    d = tmp_path_factory.mktemp("emu-variants")
    targets = {
        "no_async_v2": (d / "libascendcl_no_async_v2.so", ["-DFXEMU_OMIT_EXECUTE_ASYNC_V2"]),
        # renames the definition (and its declaration): the library no longer exports the ACL name
        "no_sync_timeout": (d / "libascendcl_no_sync_timeout.so",
                            ["-DaclrtSynchronizeStreamWithTimeout=fxtestRenamedSynchronizeStreamWithTimeout"]),
        # without the emulator's marker symbol: to the loader, a CANN runtime
        "unmarked": (d / "libascendcl_unmarked.so", ["-DfxemuVersion=fxtestRenamedVersion"]),
    }
    procs = {k: subprocess.Popen(emulator_build_command(path, *defs), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for k, (path, defs) in targets.items()}
    for k, p in procs.items():
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out
    return {k: path for k, (path, _) in targets.items()}


# ---------------------------------------------------------------- each step of the search order

def test_explicit_library_is_used_and_nothing_else_is_tried(tmp_path):
    explicit = emulator_copy(tmp_path / "explicit" / "libmy_acl.so")
    fake_cann(tmp_path / "home")
    env = child_env(ld_path=tmp_path / "home" / "lib64", FASTEXEC_ACL_LIBRARY=explicit,
                    ASCEND_HOME_PATH=tmp_path / "home", FASTEXEC_BACKEND="auto")
    result, stderr = run_child(USE_LIBRARY, env, tmp_path)
    assert_loaded(result, explicit, "FASTEXEC_ACL_LIBRARY", str(explicit))
    assert result["info"]["files"] == [str(explicit)]
    assert log_lines(stderr, "WARNING") == []


def test_relative_explicit_library_is_reported_as_an_absolute_path(tmp_path):
    explicit = emulator_copy(tmp_path / "sub" / "libmy_acl.so")
    code = PRELUDE + textwrap.dedent(
        """
        info = fastexec.backend_info()
        os.chdir("/")  # the reported path must still name the library after the working directory changes
        report(info=info, exists=os.path.isfile(info["library"]), tensors=exercise(), live=live_counters(info["library"]))
        """
    )
    result, _ = run_child(code, child_env(FASTEXEC_ACL_LIBRARY=os.path.join("sub", "libmy_acl.so")), tmp_path)
    assert result["exists"], result["info"]
    assert_loaded(result, explicit, "FASTEXEC_ACL_LIBRARY")


def test_forced_emulator_ignores_cann_installs_and_does_not_warn(tmp_path):
    fake_cann(tmp_path / "home")
    env = child_env(ld_path=tmp_path / "home" / "lib64", ASCEND_HOME_PATH=tmp_path / "home", FASTEXEC_BACKEND="emulator")
    result, stderr = run_child(USE_LIBRARY, env, tmp_path)
    assert_loaded(result, emulator.library_path(), "emulator")
    assert log_lines(stderr, "WARNING") == [], stderr


@requires_no_cann
def test_libascendcl_on_the_library_search_path_comes_before_ascend_home(tmp_path):
    on_path = fake_cann(tmp_path / "ldpath")
    fake_cann(tmp_path / "home")
    env = child_env(ld_path=on_path.parent, ASCEND_HOME_PATH=tmp_path / "home")
    result, stderr = run_child(USE_LIBRARY, env, tmp_path)
    assert_loaded(result, on_path, "libascendcl.so", "search path")
    assert log_lines(stderr, "WARNING") == [], stderr


@requires_no_cann
@pytest.mark.parametrize("backend", [None, "auto"])
def test_ascend_home_path_comes_before_ascend_toolkit_home(tmp_path, backend):
    home = fake_cann(tmp_path / "home")
    fake_cann(tmp_path / "toolkit")
    env = child_env(ASCEND_HOME_PATH=tmp_path / "home", ASCEND_TOOLKIT_HOME=tmp_path / "toolkit",
                    **({"FASTEXEC_BACKEND": backend} if backend else {}))
    result, stderr = run_child(USE_LIBRARY, env, tmp_path)
    assert_loaded(result, home, "libascendcl.so", "ASCEND_HOME_PATH")
    assert result["info"]["files"] == [str(home)]
    assert log_lines(stderr, "WARNING") == [], stderr


@requires_no_cann
def test_ascend_toolkit_home(tmp_path):
    toolkit = fake_cann(tmp_path / "toolkit")
    env = child_env(ASCEND_HOME_PATH=tmp_path / "empty-home", ASCEND_TOOLKIT_HOME=tmp_path / "toolkit")
    result, stderr = run_child(USE_LIBRARY, env, tmp_path)
    assert_loaded(result, toolkit, "libascendcl.so", "ASCEND_TOOLKIT_HOME")
    assert log_lines(stderr, "WARNING") == [], stderr


@requires_no_cann
def test_split_libraries_under_ascend_home_path(tmp_path):
    rt, mdl = split_install(tmp_path / "home" / "lib64")
    env = child_env(ASCEND_HOME_PATH=tmp_path / "home")
    result, stderr = run_child(USE_LIBRARY, env, tmp_path)
    assert_loaded(result, rt, "libacl_rt.so", "libacl_mdl.so", "ASCEND_HOME_PATH")
    assert [os.path.realpath(f) for f in result["info"]["files"]] == [os.path.realpath(rt), os.path.realpath(mdl)]
    assert log_lines(stderr, "WARNING") == [], stderr


@requires_no_cann
def test_split_libraries_on_the_library_search_path(tmp_path):
    rt, mdl = split_install(tmp_path / "ldpath")
    env = child_env(ld_path=tmp_path / "ldpath")
    result, stderr = run_child(USE_LIBRARY, env, tmp_path)
    assert_loaded(result, rt, "libacl_rt.so", "libacl_mdl.so", "search path")
    assert [os.path.basename(f) for f in result["info"]["files"]] == ["libacl_rt.so", "libacl_mdl.so"]
    assert log_lines(stderr, "WARNING") == [], stderr


@requires_no_cann
def test_split_runtime_without_libacl_mdl_is_not_used(tmp_path):
    emulator_copy(tmp_path / "home" / "lib64" / "libacl_rt.so")
    env = child_env(ASCEND_HOME_PATH=tmp_path / "home", FASTEXEC_BACKEND="ascend")
    result, _ = run_child(EXPECT_LOAD_ERROR, env, tmp_path)
    assert result["type"] == "AclLibraryNotFoundError"
    reasons = {label: reason for label, reason in result["tried"]}
    split_home = [label for label in reasons if "libacl_rt.so" in label and "ASCEND_HOME_PATH" in label]
    assert len(split_home) == 1 and reasons[split_home[0]] == "no such file"


@requires_no_cann
@pytest.mark.parametrize("backend", [None, "auto"])
def test_auto_falls_back_to_the_bundled_emulator_with_one_warning(tmp_path, backend):
    env = child_env(**({"FASTEXEC_BACKEND": backend} if backend else {}))
    code = USE_LIBRARY.replace("info = fastexec.backend_info()", "info = fastexec.backend_info(); fastexec.backend_info()")
    result, stderr = run_child(code, env, tmp_path)
    assert_loaded(result, emulator.library_path(), "bundled")
    warnings = log_lines(stderr, "WARNING")
    assert len(warnings) == 1, stderr
    assert warnings[0].startswith("LOG WARNING fastexec: ")
    assert "emulator" in warnings[0] and emulator.library_path() in warnings[0]


# ---------------------------------------------------------------- failures

@requires_no_cann
def test_forced_ascend_without_cann_says_so_and_lists_every_place_tried_in_order(tmp_path):
    env = child_env(FASTEXEC_BACKEND="ascend", ASCEND_HOME_PATH=tmp_path / "no-home", ASCEND_TOOLKIT_HOME=tmp_path / "no-toolkit")
    result, stderr = run_child(EXPECT_LOAD_ERROR, env, tmp_path)
    assert result["type"] == "AclLibraryNotFoundError"
    assert {"FastexecError", "OSError"} <= set(result["mro"])
    assert NO_CANN.search(result["text"]) and "ascend" in result["text"]
    assert result["roundtrip"]
    labels = [label for label, _ in result["tried"]]
    from fastexec import _core
    prefixes = list(_core.CANN_PREFIXES)
    assert CANN_DEFAULT_INSTALL in prefixes
    places = ["search path", "$ASCEND_HOME_PATH", "$ASCEND_TOOLKIT_HOME", *prefixes]
    expected = [(lib, place) for lib in ("libascendcl.so", "libacl_rt.so + libacl_mdl.so") for place in places]
    assert len(labels) == len(expected), labels
    for label, (lib, place) in zip(labels, expected):
        assert label.startswith(lib) and place in label, (label, lib, place)
    for label, reason in result["tried"]:
        assert reason and label in result["text"] and reason in result["text"]
    assert not any("emulator" in label for label in labels)  # never falls back to the emulator
    assert log_lines(stderr, "WARNING") == []


@requires_no_cann
def test_forced_ascend_refuses_fake_cann_installs_that_are_the_emulator(tmp_path):
    on_path = fake_cann(tmp_path / "ldpath")
    fake_cann(tmp_path / "home")
    split_install(tmp_path / "home" / "lib64")
    env = child_env(ld_path=on_path.parent, FASTEXEC_BACKEND="ascend", ASCEND_HOME_PATH=tmp_path / "home")
    result, _ = run_child(EXPECT_LOAD_ERROR, env, tmp_path)
    assert result["type"] == "AclLibraryNotFoundError"
    assert NO_CANN.search(result["text"])
    reasons = dict((label, reason) for label, reason in result["tried"])
    refused = [label for label, reason in reasons.items() if "emulator" in reason]
    assert len(refused) == 3, reasons  # search path, $ASCEND_HOME_PATH, split under $ASCEND_HOME_PATH
    assert any("search path" in label and label.startswith("libascendcl.so") for label in refused)
    assert any("ASCEND_HOME_PATH" in label and label.startswith("libascendcl.so") for label in refused)
    assert any("ASCEND_HOME_PATH" in label and "libacl_mdl.so" in label for label in refused)
    for label in refused:
        assert "not a CANN runtime" in reasons[label] and reasons[label] in result["text"]


@requires_no_cann
def test_forced_ascend_refuses_the_bundled_library_by_its_marker_not_its_name(tmp_path):
    # The emulator now carries CANN's own file name (lib/libascendcl.so): found on the library
    # search path it is still recognised, by its fxemuVersion symbol, and refused.
    assert os.path.basename(emulator.library_path()) == "libascendcl.so"
    env = child_env(ld_path=emulator.lib_dir(), FASTEXEC_BACKEND="ascend", ASCEND_HOME_PATH=tmp_path / "no-home",
                    ASCEND_TOOLKIT_HOME=tmp_path / "no-toolkit")
    result, _ = run_child(EXPECT_LOAD_ERROR, env, tmp_path)
    assert result["type"] == "AclLibraryNotFoundError"
    reasons = dict((label, reason) for label, reason in result["tried"])
    on_path = [label for label in reasons if "search path" in label and label.startswith("libascendcl.so")]
    assert len(on_path) == 1 and "not a CANN runtime" in reasons[on_path[0]], reasons


@requires_no_cann
def test_auto_finds_the_bundled_library_on_the_search_path_as_the_emulator(tmp_path):
    # With the emulator's folder on LD_LIBRARY_PATH, auto takes it as libascendcl.so from the
    # search path and reports it as the emulator, by its marker symbol.
    env = child_env(ld_path=emulator.lib_dir(), ASCEND_HOME_PATH=tmp_path / "no-home")
    result, _ = run_child(USE_LIBRARY, env, tmp_path)
    assert_loaded(result, emulator.library_path(), "search path")


@requires_no_cann
def test_forced_ascend_uses_a_cann_runtime(tmp_path, variant_libraries):
    home = tmp_path / "home" / "lib64" / "libascendcl.so"
    home.parent.mkdir(parents=True)
    shutil.copy2(variant_libraries["unmarked"], home)
    env = child_env(FASTEXEC_BACKEND="ascend", ASCEND_HOME_PATH=tmp_path / "home")
    result, stderr = run_child(USE_LIBRARY, env, tmp_path)
    info = result["info"]
    assert os.path.realpath(info["library"]) == os.path.realpath(home)
    assert "ASCEND_HOME_PATH" in info["found_by"]
    assert info["emulator"] is False and info["backend"] == "ascend"
    assert info["soc"] == "Ascend310P3" and info["device_count"] == 1 and info["missing_optional"] == []
    assert result["tensors"] == TINY_TENSORS
    assert result["live"] == {k: 0 for k in LIVE_COUNTERS}
    assert log_lines(stderr, "WARNING") == []


def test_explicit_library_that_does_not_exist(tmp_path):
    missing = tmp_path / "nowhere" / "libascendcl.so"
    fake_cann(tmp_path / "home")  # present, but an explicit path means nothing else is tried
    env = child_env(FASTEXEC_ACL_LIBRARY=missing, ASCEND_HOME_PATH=tmp_path / "home")
    result, _ = run_child(EXPECT_LOAD_ERROR, env, tmp_path)
    assert result["type"] == "AclLibraryNotFoundError"
    assert str(missing) in result["text"] and "FASTEXEC_ACL_LIBRARY" in result["text"]
    assert len(result["tried"]) == 1 and str(missing) in result["tried"][0][0]
    assert "no such file" in result["tried"][0][1]
    assert result["roundtrip"]


def test_explicit_library_that_is_not_acl_lists_the_missing_required_functions(tmp_path):
    libm = ctypes.util.find_library("m")
    assert libm, "libm not found"
    env = child_env(FASTEXEC_ACL_LIBRARY=libm)
    result, _ = run_child(EXPECT_LOAD_ERROR, env, tmp_path)
    assert result["type"] == "AclLibraryNotFoundError"
    assert libm in result["text"]
    (label, reason), = result["tried"]
    assert reason.startswith("missing required ACL functions: ")
    listed = reason[len("missing required ACL functions: "):].split()
    assert listed == REQUIRED  # every required function, and no optional one
    assert not set(listed) & set(OPTIONAL)


def test_explicit_library_that_dlopen_rejects(tmp_path):
    bogus = tmp_path / "libascendcl.so"
    bogus.write_text("not an ELF file\n")
    env = child_env(FASTEXEC_ACL_LIBRARY=bogus)
    result, _ = run_child(EXPECT_LOAD_ERROR, env, tmp_path)
    assert result["type"] == "AclLibraryNotFoundError"
    (label, reason), = result["tried"]
    assert str(bogus) in reason and reason != "no such file", reason  # dlerror()'s text
    assert reason in result["text"]


def test_invalid_backend_value_names_the_accepted_values(tmp_path):
    env = child_env(FASTEXEC_BACKEND="cuda")
    result, _ = run_child(EXPECT_LOAD_ERROR, env, tmp_path)
    assert "FastexecError" in result["mro"]
    assert "cuda" in result["text"]
    for value in ("auto", "ascend", "emulator"):
        assert value in result["text"]


# ---------------------------------------------------------------- optional symbols

def test_library_without_aclmdlExecuteAsyncV2_works_and_reports_it(tmp_path, variant_libraries):
    lib = variant_libraries["no_async_v2"]
    nm = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True, check=True).stdout
    assert " aclmdlExecuteAsyncV2" not in nm and " aclmdlExecuteV2" in nm
    code = PRELUDE + textwrap.dedent(
        """
        info = fastexec.backend_info()
        tensors = exercise()
        with fastexec.Device(0) as dev:
            with fastexec.ExecConfig(stream_sync_timeout_ms=100) as cfg:
                options = cfg.options
            with fastexec.Stream(dev) as s:
                s.synchronize(timeout_ms=1000)
        report(info=info, tensors=tensors, options=options, live=live_counters(info["library"]))
        """
    )
    result, stderr = run_child(code, child_env(FASTEXEC_ACL_LIBRARY=lib), tmp_path)
    info = result["info"]
    assert info["missing_optional"] == ["aclmdlExecuteAsyncV2"]
    assert os.path.realpath(info["library"]) == os.path.realpath(lib)
    assert info["emulator"] is True and info["soc"] == "Ascend310P3" and info["device_count"] == 1
    assert result["tensors"] == TINY_TENSORS
    assert result["options"] == {"stream_sync_timeout_ms": 100}
    assert result["live"] == {k: 0 for k in LIVE_COUNTERS}
    assert log_lines(stderr, "WARNING") == []


def test_calling_a_missing_optional_function_raises_naming_symbol_and_library(tmp_path, variant_libraries):
    lib = variant_libraries["no_sync_timeout"]
    code = PRELUDE + textwrap.dedent(
        """
        info = fastexec.backend_info()
        with fastexec.Device(0) as dev:
            with fastexec.Stream(dev) as s:
                try:
                    s.synchronize(timeout_ms=100)
                except fastexec.AclError as e:
                    err = e
                s.synchronize()  # the required function still works
        back = pickle.loads(pickle.dumps(err))
        report(info=info, type=type(err).__name__, symbol=err.symbol, library=err.library, text=str(err),
               not_impl=isinstance(err, NotImplementedError), back=[type(back).__name__, back.symbol, back.library, str(back)],
               live=live_counters(info["library"]))
        """
    )
    result, _ = run_child(code, child_env(FASTEXEC_ACL_LIBRARY=lib), tmp_path)
    assert result["info"]["missing_optional"] == ["aclrtSynchronizeStreamWithTimeout"]
    assert result["type"] == "AclFunctionNotFoundError" and result["not_impl"]
    assert result["symbol"] == "aclrtSynchronizeStreamWithTimeout"
    assert result["library"] == result["info"]["library"]
    assert "aclrtSynchronizeStreamWithTimeout" in result["text"] and result["info"]["library"] in result["text"]
    assert result["back"] == [result["type"], result["symbol"], result["library"], result["text"]]
    assert result["live"] == {k: 0 for k in LIVE_COUNTERS}


@pytest.mark.timing
def test_executor_waits_by_query_loop_without_the_timeout_syncs(tmp_path, variant_libraries):
    """On a runtime without aclrtSynchronizeStreamWithTimeout the executor's waits fall back to a
    query loop: results are right, and a wait with a timeout on a batch stalled 3 s gives up in
    well under the stall (a ratio of the stall), after which the batch still completes."""
    lib = variant_libraries["no_sync_timeout"]
    code = PRELUDE + textwrap.dedent(
        """
        import time
        import numpy as np
        emu = ctypes.CDLL(os.environ["FASTEXEC_ACL_LIBRARY"])
        emu.fxemuAddFault.argtypes = [ctypes.c_char_p]
        with fastexec.Executor(emulator.sample_model("tiny")) as ex:
            x = np.arange(16, dtype=np.float32).reshape(1, 16)
            ok = bool(np.array_equal(ex.run(np.concatenate([x] * 9))[0], np.concatenate([x] * 9)))
            emu.fxemuAddFault(b"stall:aclmdlExecuteAsync:1:3000")
            t = ex.submit(x)
            t0 = time.monotonic()
            try:
                ex.result(t, timeout=0.2)
                waited = None
            except fastexec.WaitTimeout:
                waited = time.monotonic() - t0
            late = bool(np.array_equal(ex.result(t)[0], x))
            info = fastexec.backend_info()
        report(missing=info["missing_optional"], ok=ok, waited=waited, late=late, live=live_counters(info["library"]))
        """
    )
    result, _ = run_child(code, child_env(FASTEXEC_ACL_LIBRARY=lib), tmp_path)
    assert result["missing"] == ["aclrtSynchronizeStreamWithTimeout"]
    assert result["ok"] and result["late"]
    assert result["waited"] is not None and result["waited"] < 3.0 / 3, result
    assert result["live"] == {k: 0 for k in LIVE_COUNTERS}


def test_function_not_found_error_class():
    err = AclFunctionNotFoundError("aclmdlExecuteAsyncV2", "/opt/cann/lib64/libascendcl.so")
    assert err.symbol == "aclmdlExecuteAsyncV2" and err.library == "/opt/cann/lib64/libascendcl.so"
    assert isinstance(err, AclError) and isinstance(err, AclNotAvailableError) and isinstance(err, NotImplementedError)
    assert isinstance(err, FastexecError)
    assert err.api == "aclmdlExecuteAsyncV2"
    assert "aclmdlExecuteAsyncV2" in str(err) and "/opt/cann/lib64/libascendcl.so" in str(err)
    assert fastexec.AclFunctionNotFoundError is AclFunctionNotFoundError
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(err, protocol))
        assert type(back) is AclFunctionNotFoundError
        assert (back.symbol, back.library, back.code, back.name, back.api, back.message, str(back)) == \
               (err.symbol, err.library, err.code, err.name, err.api, err.message, str(err))


# ---------------------------------------------------------------- backend_info and one-time loading

def test_backend_info_in_this_process():
    info = fastexec.backend_info()
    prof = emulator.profile()
    assert {"library", "emulator", "soc", "device_count", "backend", "found_by", "missing_optional"} <= set(info)
    assert os.path.realpath(info["library"]) == os.path.realpath(emulator.library_path())
    assert info["emulator"] is True and info["backend"] == "emulator"
    assert info["soc"] == prof["soc_name"] and info["device_count"] == prof["device_count"]
    assert info["missing_optional"] == []
    assert info == fastexec.backend_info()


def test_backend_info_reports_the_emulated_profile(tmp_path):
    env = child_env(FASTEXEC_BACKEND="emulator", FASTEXEC_EMU_PROFILE="atlas-800i-a2", FASTEXEC_EMU_DEVICES=3)
    code = PRELUDE + "info = fastexec.backend_info(); report(info=info)"
    result, _ = run_child(code, env, tmp_path)
    assert result["info"]["soc"] == "Ascend910B4" and result["info"]["device_count"] == 3


@requires_no_cann
def test_eight_threads_load_once_and_see_the_same_info(tmp_path):
    code = PRELUDE + textwrap.dedent(
        """
        import threading
        import fastexec._core as core
        loads = []
        original = core._load
        def counting_load():
            loads.append(threading.get_ident())
            return original()
        core._load = counting_load
        sys.setswitchinterval(1e-6)
        barrier = threading.Barrier(8)
        results, errors = [None] * 8, []
        def worker(i):
            barrier.wait()
            try:
                results[i] = fastexec.backend_info()
            except BaseException as e:
                errors.append(repr(e))
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        report(loads=len(loads), errors=errors, results=results, live=live_counters(results[0]["library"]))
        """
    )
    result, stderr = run_child(code, child_env(), tmp_path)
    assert result["errors"] == []
    assert result["loads"] == 1
    assert all(r == result["results"][0] for r in result["results"])
    assert os.path.realpath(result["results"][0]["library"]) == os.path.realpath(emulator.library_path())
    assert len(log_lines(stderr, "WARNING")) == 1, stderr  # the fallback is announced once
    assert result["live"] == {k: 0 for k in LIVE_COUNTERS}
