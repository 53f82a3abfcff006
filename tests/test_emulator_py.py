"""fastexec.emulator: locating the library and headers, build flags, samples, introspection."""
import ctypes
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fastexec import emulator

# Every function issue "Foundation" requires the emulator to export.
REQUIRED_SYMBOLS = """
aclInit aclFinalize aclrtSetDevice aclrtResetDevice aclrtGetDevice aclrtGetDeviceCount aclrtGetRunMode
aclrtGetSocName aclrtCreateContext aclrtDestroyContext aclrtSetCurrentContext aclrtGetCurrentContext
aclGetRecentErrMsg aclrtCreateStream aclrtCreateStreamWithConfig aclrtDestroyStream aclrtSynchronizeStream
aclrtSynchronizeStreamWithTimeout aclrtStreamQuery aclrtCreateEvent aclrtCreateEventWithFlag aclrtDestroyEvent
aclrtRecordEvent aclrtStreamWaitEvent aclrtSynchronizeEvent aclrtSynchronizeEventWithTimeout aclrtQueryEventStatus
aclrtEventElapsedTime aclrtLaunchCallback aclrtSubscribeReport aclrtUnSubscribeReport aclrtProcessReport
aclrtLaunchHostFunc aclrtMalloc aclrtMallocAlign32 aclrtFree aclrtMallocHost aclrtFreeHost aclrtMemcpy
aclrtMemcpyAsync aclrtMemset aclrtMemsetAsync aclrtGetMemInfo aclrtHostRegister aclrtHostUnregister
aclCreateDataBuffer aclDestroyDataBuffer aclUpdateDataBuffer aclGetDataBufferAddr aclGetDataBufferSizeV2
aclDataTypeSize aclmdlCreateDataset aclmdlDestroyDataset aclmdlAddDatasetBuffer aclmdlGetDatasetNumBuffers
aclmdlGetDatasetBuffer aclmdlLoadFromFile aclmdlLoadFromMem aclmdlQuerySize aclmdlUnload aclmdlCreateDesc
aclmdlDestroyDesc aclmdlGetDesc aclmdlGetNumInputs aclmdlGetNumOutputs aclmdlGetInputSizeByIndex
aclmdlGetOutputSizeByIndex aclmdlGetInputDims aclmdlGetOutputDims aclmdlGetInputNameByIndex
aclmdlGetOutputNameByIndex aclmdlGetInputDataType aclmdlGetOutputDataType aclmdlGetInputFormat
aclmdlGetOutputFormat aclmdlGetInputIndexByName aclmdlGetOutputIndexByName aclmdlGetDynamicBatch
aclmdlSetDynamicBatchSize aclmdlExecute aclmdlExecuteAsync aclmdlExecuteV2 aclmdlExecuteAsyncV2
aclmdlCreateExecConfigHandle aclmdlSetExecConfigOpt aclmdlDestroyExecConfigHandle
fxemuVersion fxemuGetCounters fxemuGetProfile fxemuLastFinding fxemuSetChecked fxemuSetFastMode
fxemuAddFault fxemuClearFaults fxemuStallStream
""".split()


def run_py(code: str, env_extra=None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_EMU_")}
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_library_exports_every_required_symbol():
    lib = ctypes.CDLL(emulator.library_path())
    missing = [name for name in REQUIRED_SYMBOLS if not hasattr(lib, name)]
    assert missing == []


def test_library_exports_only_acl_and_fxemu_symbols_and_needs_no_python():
    nm = subprocess.run(["nm", "-D", "--defined-only", emulator.library_path()], capture_output=True, text=True, check=True)
    exported = [line.split()[-1] for line in nm.stdout.splitlines() if " T " in line]
    assert exported and all(re.match(r"^(acl|fxemu)", name) for name in exported), exported
    undefined = subprocess.run(["nm", "-D", "--undefined-only", emulator.library_path()], capture_output=True, text=True, check=True)
    assert "Py" not in undefined.stdout
    ldd = subprocess.run(["ldd", emulator.library_path()], capture_output=True, text=True, check=True)
    assert "libpython" not in ldd.stdout


def test_include_dir_holds_the_acl_and_emulator_headers():
    inc = Path(emulator.include_dir())
    for header in ("acl/acl.h", "acl/acl_rt.h", "acl/acl_mdl.h", "acl/acl_base.h", "acl/error_codes/rt_error_codes.h",
                   "acl/error_codes/ge_error_codes.h", "fastexec/acl_emulator.h"):
        assert (inc / header).is_file(), header


def test_module_cli_prints_flags_and_paths():
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "fastexec.emulator", *args], capture_output=True, text=True, check=True).stdout.strip()

    assert cli("--cflags") == f"-I{emulator.include_dir()}"
    libs = cli("--libs").split()
    assert "-lascendcl" in libs and f"-L{Path(emulator.library_path()).parent}" in libs
    assert Path(emulator.library_path()).name == "libascendcl.so" and Path(emulator.library_path()).parent.name == "lib"
    assert Path(emulator.dvpp_library_path()).parent == Path(emulator.library_path()).parent
    assert cli("--library") == emulator.library_path()
    assert cli("--dvpp-library") == emulator.dvpp_library_path()
    assert cli("--cflags", "--libs").split() == [f"-I{emulator.include_dir()}", *emulator.libs()]
    samples = dict(line.split("\t") for line in cli("--samples").splitlines())
    assert set(samples) == {"resnet50-int8", "balanced", "tiny", "dynamic-batch", "dynamic-hw", "dynamic-dims", "dynamic-shape",
                            "multi-io", "compute-bound", "aipp-static", "aipp-dynamic"}
    assert all(Path(p).is_file() for p in samples.values())


def test_module_cli_rejects_no_option():
    proc = subprocess.run([sys.executable, "-m", "fastexec.emulator"], capture_output=True, text=True)
    assert proc.returncode == 2 and "give --cflags and/or --libs" in proc.stderr
    both = subprocess.run([sys.executable, "-m", "fastexec.emulator", "--cflags", "--library"], capture_output=True, text=True)
    assert both.returncode == 2 and "give --cflags and/or --libs" in both.stderr


def test_sample_model_unknown_name_lists_the_available_ones():
    with pytest.raises(ValueError, match="resnet50-int8") as info:
        emulator.sample_model("resnet51")
    assert "resnet51" in str(info.value)


# An AscendCL program as its users write it: only <acl/acl.h>, compiled unchanged as C and C++.
ACL_PROGRAM = textwrap.dedent(r"""
    #include <stdio.h>
    #include <string.h>
    #include "acl/acl.h"

    int main(int argc, char **argv) {
        (void)argc;
        if (aclInit(NULL) != ACL_SUCCESS) return 10;
        if (aclrtSetDevice(0) != ACL_SUCCESS) return 11;
        uint32_t modelId = 0;
        if (aclmdlLoadFromFile(argv[1], &modelId) != ACL_SUCCESS) return 12;
        aclmdlDesc *desc = aclmdlCreateDesc();
        if (aclmdlGetDesc(desc, modelId) != ACL_SUCCESS) return 13;
        size_t inSize = aclmdlGetInputSizeByIndex(desc, 0), outSize = aclmdlGetOutputSizeByIndex(desc, 0);
        aclrtStream stream = NULL;
        if (aclrtCreateStream(&stream) != ACL_SUCCESS) return 14;
        void *hostIn = NULL, *hostOut = NULL, *devIn = NULL, *devOut = NULL;
        aclrtMallocHost(&hostIn, inSize);
        aclrtMallocHost(&hostOut, outSize);
        aclrtMalloc(&devIn, inSize, ACL_MEM_MALLOC_HUGE_FIRST);
        aclrtMalloc(&devOut, outSize, ACL_MEM_MALLOC_HUGE_FIRST);
        float *in = (float *)hostIn;
        for (size_t i = 0; i < inSize / sizeof(float); i++) in[i] = (float)i;
        aclmdlDataset *input = aclmdlCreateDataset(), *output = aclmdlCreateDataset();
        aclDataBuffer *inBuf = aclCreateDataBuffer(devIn, inSize), *outBuf = aclCreateDataBuffer(devOut, outSize);
        aclmdlAddDatasetBuffer(input, inBuf);
        aclmdlAddDatasetBuffer(output, outBuf);
        aclrtMemcpyAsync(devIn, inSize, hostIn, inSize, ACL_MEMCPY_HOST_TO_DEVICE, stream);
        if (aclmdlExecuteAsync(modelId, input, output, stream) != ACL_SUCCESS) return 15;
        aclrtMemcpyAsync(hostOut, outSize, devOut, outSize, ACL_MEMCPY_DEVICE_TO_HOST, stream);
        if (aclrtSynchronizeStream(stream) != ACL_SUCCESS) return 16;
        int same = memcmp(hostIn, hostOut, inSize) == 0;
        printf("%s %s %zu\n", aclrtGetSocName(), same ? "identity-ok" : "identity-wrong", inSize);
        aclDestroyDataBuffer(inBuf); aclDestroyDataBuffer(outBuf);
        aclmdlDestroyDataset(input); aclmdlDestroyDataset(output);
        aclrtFree(devIn); aclrtFree(devOut); aclrtFreeHost(hostIn); aclrtFreeHost(hostOut);
        aclrtDestroyStream(stream);
        aclmdlDestroyDesc(desc);
        aclmdlUnload(modelId);
        aclrtResetDevice(0);
        aclFinalize();
        return 0;
    }
""")


@pytest.mark.parametrize("compiler,flags", [("cc", ["-std=c11"]), ("c++", ["-x", "c++", "-std=c++11"])])
def test_acl_program_compiles_unchanged_and_runs_on_the_emulator(tmp_path, compiler, flags):
    src = tmp_path / "app.c"
    src.write_text(ACL_PROGRAM)
    exe = tmp_path / "app"
    build = subprocess.run([compiler, *flags, "-Wall", "-Wextra", "-Werror", *emulator.cflags(), str(src), "-x", "none",
                            "-o", str(exe), *emulator.libs()], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_EMU_")}
    run = subprocess.run([str(exe), emulator.sample_model("tiny")], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["Ascend310P3", "identity-ok", "64"]


def test_counters_and_profile_from_python():
    out = run_py(
        "from fastexec import emulator as e; c = e.counters(); p = e.profile();"
        "print(c['streams'], c['models'], len(c['findings_by_kind']), p['name'], p['soc_name'], p['device_count'],"
        " p['h2d_gbps'], p['checked'], p['fast'])"
    )
    assert out.split() == ["0", "0", "7", "atlas-300i-pro", "Ascend310P3", "1", "24.0", "True", "False"]


@pytest.mark.parametrize("env,expected", [
    ({"FASTEXEC_EMU_PROFILE": "ipv350"}, "ipv350 IPV350 1 v2=True fast=False checked=True"),
    ({"FASTEXEC_EMU_PROFILE": "atlas-300i-duo", "FASTEXEC_EMU_FAST": "1"}, "atlas-300i-duo Ascend310P3 2 v2=False fast=True checked=True"),
    ({"FASTEXEC_EMU_DEVICES": "3", "FASTEXEC_EMU_CHECKED": "0"}, "atlas-300i-pro Ascend310P3 3 v2=False fast=False checked=False"),
])
def test_profile_follows_the_environment(env, expected):
    out = run_py("from fastexec import emulator as e; p = e.profile();"
                 "print(p['name'], p['soc_name'], p['device_count'], f\"v2={p['exec_async_v2']} fast={p['fast']} checked={p['checked']}\")", env)
    assert out.strip() == expected


def test_profile_file(tmp_path):
    path = tmp_path / "card.profile"
    path.write_text("# my card\nbase slow-link\nsoc_name Ascend310P1\ndevices 2\nh2d_gbps 3.5\n")
    out = run_py("from fastexec import emulator as e; p = e.profile(); print(p['name'], p['soc_name'], p['device_count'], p['h2d_gbps'], p['d2h_gbps'])",
                 {"FASTEXEC_EMU_PROFILE": str(path)})
    assert out.split() == ["file:card.profile", "Ascend310P1", "2", "3.5", "1.0"]


def test_bad_profile_file_is_reported_and_the_default_used(tmp_path):
    path = tmp_path / "bad.profile"
    path.write_text("base slow-link\nh2d_gbps fast\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_EMU_")}
    env["FASTEXEC_EMU_PROFILE"] = str(path)
    proc = subprocess.run([sys.executable, "-c", "from fastexec import emulator as e; print(e.profile()['name'])"],
                          capture_output=True, text=True, env=env)
    assert proc.stdout.strip() == "atlas-300i-pro"
    assert f"{path}:2: bad profile line" in proc.stderr
