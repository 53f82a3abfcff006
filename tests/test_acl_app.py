"""A third-party AscendCL application (tests/app/acl_sample.cpp, written the way Ascend's
samples are) built as C++ against the installed headers with the flags of
``python -m fastexec.emulator --cflags --libs`` plus ``-lacl_dvpp``, run unmodified on the
emulator, every output checked against the numpy reference kernels."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastexec import emulator
from fastexec.emulator.model_file import ModelDef, TensorDef, read_model, reference_outputs, write_model

APP = Path(__file__).parent / "app" / "acl_sample.cpp"
CXX = shutil.which(os.environ.get("CXX", "c++"))

pytestmark = pytest.mark.skipif(CXX is None, reason="no C++ compiler")

# A static classifier with work and weight memory, for aclmdlQuerySize + aclmdlLoadFromFileWithMem.
CLASSIFIER = ModelDef(
    name="classifier",
    inputs=(TensorDef("image", "uint8", "NCHW", (2, 3, 32, 32)),),
    outputs=(TensorDef("prob", "float16", "ND", (2, 10)),),
    kernel="segment_sum",
    scale=0.01,
    bias=0.5,
    compute_us=300.0,
    workspace_bytes=1 << 20,
    weight_bytes=256 << 10,
)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    out = tmp_path_factory.mktemp("acl-app")
    flags = subprocess.run([sys.executable, "-m", "fastexec.emulator", "--cflags", "--libs"], capture_output=True,
                           text=True, check=True).stdout.split()
    exe = out / "acl_sample"
    cmd = [CXX, "-std=c++11", "-Wall", "-Wextra", "-Werror", str(APP), "-o", str(exe), *flags, "-lacl_dvpp"]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, f"{' '.join(cmd)}\n{build.stderr}"
    return exe


def run_app(app, tmp_path, env_extra):
    rng = np.random.default_rng(13)
    static_in = rng.integers(0, 255, size=(2, 3, 32, 32), dtype=np.uint8)
    dynamic = read_model(emulator.sample_model("dynamic-batch"))
    dynamic_in = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)   # batch 2 of gears 1, 2, 4, 8
    (tmp_path / "static_in0.bin").write_bytes(static_in.tobytes())
    (tmp_path / "dynamic_in0.bin").write_bytes(dynamic_in.tobytes())
    model_path = tmp_path / "classifier.om"
    write_model(model_path, CLASSIFIER)
    config = tmp_path / "acl.json"
    config.write_text(json.dumps({"dump": {"dump_path": str(tmp_path), "dump_list": []}, "unknown_section": {"x": [1, 2]}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_EMU_") and k != "ASCEND_RT_VISIBLE_DEVICES"}
    env.update({"FASTEXEC_EMU_FAST": "1", **env_extra})
    proc = subprocess.run([str(app), str(config), str(model_path), emulator.sample_model("dynamic-batch"), str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=120)
    results = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return proc, results, static_in, dynamic, dynamic_in


@pytest.mark.parametrize("strict", ["0", "1"], ids=["default", "strict"])
def test_sample_application_runs_unmodified(app, tmp_path, strict):
    # The second asynchronous execution meets an injected AI Core exception (507015). An
    # application written the way Ascend's samples are passes CANN-strict mode too.
    proc, r, static_in, dynamic, dynamic_in = run_app(app, tmp_path, {"FASTEXEC_EMU_FAULTS": "task:aclmdlExecuteAsync:2:507015",
                                                                      "FASTEXEC_EMU_STRICT": strict})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert r["failures"] == "0"
    assert r["device_count"] == "1" and r["run_mode"] == "1" and r["soc"] == "Ascend310P3"

    # static model: user memory of the queried sizes, descriptions, synchronous execution
    assert r["query_size"] == f"{1 << 20},{256 << 10}"
    assert r["static.inputs"] == "1" and r["static.outputs"] == "1"
    assert r["static.input0"] == f"image:2,3,32,32:4:0:{2 * 3 * 32 * 32}"     # ACL_UINT8, ACL_FORMAT_NCHW
    assert r["static.output0"] == "prob:2,10:1:2:40"                         # ACL_FLOAT16, ACL_FORMAT_ND
    assert r["static.cur_output0"] == "2,10"
    assert r["static.aipp0"] == "0"                                           # ACL_DATA_WITHOUT_AIPP
    assert r["static.batch_gears"] == "" and r["static.dims_gears"] == "0" and r["static.hw_count"] == "0"
    want = reference_outputs(CLASSIFIER, [static_in])[0]
    got = np.frombuffer((tmp_path / "static_out0.bin").read_bytes(), np.float16).reshape(2, 10)
    np.testing.assert_array_equal(got, want)
    assert r["static.output_desc"] == "2,10:1:40"
    assert r["static.input_desc"] == f"4:{2 * 3 * 32 * 32}:{2 * 3 * 32 * 32}"

    # dynamic batch: gears, the current gear's output dims, asynchronous execution at batch 2
    assert r["dynamic.inputs"] == "2"   # images + ascend_mbatch_shape_data
    assert r["dynamic.input1"].startswith("ascend_mbatch_shape_data:1:9:2:")
    assert r["dynamic.batch_gears"] == "1,2,4,8"
    assert r["dynamic.output0"] == f"scores:-1,10:0:2:{8 * 10 * 4}"
    assert r["dynamic.cur_output0"] == "8,10"            # no gear set yet: the largest
    assert r["dynamic.cur_output0_after_set"] == "2,10"
    want = reference_outputs(dynamic, [dynamic_in], batch=2)[0]
    got = np.frombuffer((tmp_path / "dynamic_out0.bin").read_bytes(), np.float32).reshape(2, 10)
    np.testing.assert_array_equal(got, want)

    # the injected device exception reached the callback before the synchronisation returned
    assert r["second_sync"] == "507015"
    assert r["exception.calls"] == "1"
    assert r["exception.device"] == "0"
    assert r["exception.op"] == "dynamic-batch"
    assert r["exception.op_io"] == "1,1" and r["exception.input_dims"] == "2,3,16,16"

    # DVPP memory and aclrtMemset
    assert r["dvpp.aligned"] == "1" and r["dvpp.roundtrip"] == "1"


def test_sample_application_sees_only_the_visible_devices(app, tmp_path):
    proc, r, *_ = run_app(app, tmp_path, {"FASTEXEC_EMU_DEVICES": "4", "ASCEND_RT_VISIBLE_DEVICES": "1,3"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert r["device_count"] == "2"
    assert r["exception.calls"] == "0" and r["second_sync"] == "0"


def test_sample_application_refuses_a_malformed_acl_json(app, tmp_path):
    proc, r, *_ = run_app(app, tmp_path, {})
    assert proc.returncode == 0
    (tmp_path / "acl.json").write_text('{"dump": {"dump_path": "x",}}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_EMU_")}
    bad = subprocess.run([str(app), str(tmp_path / "acl.json"), "m", "m", str(tmp_path)], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "aclInit failed, errorCode = 100006" in bad.stderr and "line 1, column 28" in bad.stderr
