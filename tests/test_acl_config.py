"""aclInit's configuration (fastexec.init, FASTEXEC_ACL_CONFIG, --acl-json) and what the emulator
does with it: the dump (files holding exactly each execution's tensors, in CANN's layout), the
dump API (aclmdlInitDump / aclmdlSetDump / aclmdlFinalizeDump) and the profiler timeline. aclInit
runs once per process, so every case runs in a child."""
import json
import os
import subprocess
import sys

import pytest

from test_executor import child_code, child_result, run_child

PARSE_FILE = 100006               # ACL_ERROR_PARSE_FILE: the file is not JSON
INVALID_DUMP_CONFIG = 100009
INVALID_PROFILING_CONFIG = 100010
REPEAT_INITIALIZE = 100002
DUMP_ALREADY_RUN = 100044
DUMP_NOT_RUN = 100045


def _config(tmp_path, doc, name="acl.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def _dump_doc(path, mode=None, names=("balanced",)):
    d = {"dump_path": str(path), "dump_list": [{"model_name": n} for n in names]}
    if mode:
        d["dump_mode"] = mode
    return {"dump": d, "some_future_section": {"anything": [1, 2]}}


INIT_CHILD = """
path = sys.argv[1]
try:
    fastexec.init(acl_config=path)
    print(json.dumps({"ok": True, "config": fastexec.acl_config()}))
except fastexec.AclError as exc:
    print(json.dumps({"ok": False, "code": exc.code, "api": exc.api, "message": str(exc)}))
"""


@pytest.mark.parametrize("doc,code,words", [
    ('{"dump": {"dump_path": "/tmp", ', PARSE_FILE, "not valid JSON"),
    ("[1, 2]", PARSE_FILE, "must hold a JSON object"),
    ({"dump": {"dump_path": 7, "dump_list": []}}, INVALID_DUMP_CONFIG, "must be strings"),
    ({"dump": {"dump_path": "/tmp", "dump_list": {"model_name": "m"}}}, INVALID_DUMP_CONFIG, "must be an array"),
    ({"dump": {"dump_path": "/tmp", "dump_list": [{"model_name": ["m"]}]}}, INVALID_DUMP_CONFIG, "must be a string"),
    ({"profiler": {"switch": "yes", "output": "/tmp"}}, INVALID_PROFILING_CONFIG, "switch 'yes'"),
], ids=["syntax", "not-object", "path-type", "list-type", "name-type", "bad-profiler"])
def test_bad_config_is_refused_with_its_code(tmp_path, doc, code, words):
    r = child_result(run_child(child_code(INIT_CHILD), args=(_config(tmp_path, doc),)))
    assert r["ok"] is False and r["code"] == code and r["api"] == "aclInit", r
    assert words in r["message"], r["message"]


INVALID_DUMPS = [
    ({"dump_list": [{"model_name": "m"}]}, "needs dump_path and dump_list"),
    ({"dump_path": "/no/such/folder", "dump_list": [{"model_name": "m"}]}, "not an existing folder"),
    ({"dump_path": "/tmp", "dump_list": [{"model_name": "m"}], "dump_mode": "both"}, "dump_mode 'both'"),
    ({"dump_path": "/tmp", "dump_list": [{"layer": ["x"]}]}, "names no model"),
    ({"dump_path": "/tmp", "dump_list": [{"model_name": "m"}], "dump_op_switch": "maybe"}, "dump_op_switch 'maybe'"),
]
INVALID_IDS = ["no-path", "missing-folder", "bad-mode", "no-model", "bad-switch"]


@pytest.mark.parametrize("section,words", INVALID_DUMPS, ids=INVALID_IDS)
def test_invalid_dump_section(tmp_path, section, words):
    """Well-formed but invalid: aclInit runs without the dump and says why (CANN's aclInit logs
    it and goes on); aclmdlSetDump refuses it with ACL_ERROR_INVALID_DUMP_CONFIG."""
    cfg = _config(tmp_path, {"dump": section})
    proc = run_child(child_code(INIT_CHILD), args=(cfg,))
    assert child_result(proc) == {"ok": True, "config": cfg}
    assert "the dump section is ignored" in proc.stderr and words in proc.stderr
    code = child_code("""
        import ctypes
        lib = ctypes.CDLL(emulator.library_path())
        fastexec.init()
        assert lib.aclmdlInitDump() == 0
        print(json.dumps({"code": lib.aclmdlSetDump(sys.argv[1].encode())}))
    """)
    assert child_result(run_child(code, args=(cfg,))) == {"code": INVALID_DUMP_CONFIG}


def test_config_is_per_process(tmp_path):
    a = _config(tmp_path, {"unknown": {"x": 1}}, "a.json")
    b = _config(tmp_path, {}, "b.json")
    code = child_code("""
        a, b = sys.argv[1], sys.argv[2]
        fastexec.init(acl_config=a)
        fastexec.init(acl_config=a)                 # the one in force: nothing to do
        fastexec.init()
        try:
            fastexec.init(acl_config=b)
            print(json.dumps({"refused": False}))
        except fastexec.FastexecError as exc:
            print(json.dumps({"refused": True, "message": str(exc), "config": fastexec.acl_config()}))
    """)
    r = child_result(run_child(code, args=(a, b)))
    assert r["refused"] and r["config"] == a
    assert f"already initialised with {a}" in r["message"] and "b.json" in r["message"]
    assert "before anything uses the device" in r["message"]


def test_late_config_after_first_use_is_refused(tmp_path):
    a = _config(tmp_path, {})
    code = child_code("""
        fastexec.backend_info()                     # first use: aclInit without a configuration
        try:
            fastexec.init(acl_config=sys.argv[1])
        except fastexec.FastexecError as exc:
            print(json.dumps({"message": str(exc)}))
    """)
    r = child_result(run_child(code, args=(a,)))
    assert "already initialised without a configuration" in r["message"]


def test_environment_variable_names_the_config(tmp_path):
    a = _config(tmp_path, {"dump": {"dump_path": str(tmp_path), "dump_list": [{"model_name": "x"}]}})
    code = child_code("""
        import ctypes
        fastexec.backend_info()                     # first use reads FASTEXEC_ACL_CONFIG
        buf = ctypes.create_string_buffer(512)
        rc = ctypes.CDLL(emulator.library_path()).fxemuGetConfigValue(b"dump.dump_path", buf, ctypes.c_size_t(512))
        print(json.dumps({"config": fastexec.acl_config(), "rc": rc, "dump_path": buf.value.decode()}))
    """)
    r = child_result(run_child(code, FASTEXEC_ACL_CONFIG=a))
    assert r == {"config": a, "rc": 0, "dump_path": str(tmp_path)}


DUMP_CHILD = """
import glob
fastexec.init(acl_config=sys.argv[1])
model = emulator.sample_model(sys.argv[2])
batches = int(sys.argv[3])
with fastexec.Executor(model, instances=1) as ex:
    b = ex.batch_size
    x = T.make_inputs(sys.argv[2], batches * b, seed=5)
    outs = ex.run(x)
want = T.expected_of(T.SAMPLES[sys.argv[2]], x)
root = sys.argv[4]
found = {}
for f in sorted(glob.glob(os.path.join(root, "*", "*", "*", "*", "*", "*.npy"))):
    parts = os.path.relpath(f, root).split(os.sep)
    found.setdefault(int(parts[4]), []).append((parts, os.path.basename(f)))
report = {"indexes": sorted(found), "layout": [], "match": True, "names": []}
for index, files in sorted(found.items()):
    for parts, name in files:
        fields = name.split(".")
        report["layout"].append(parts[:4])
        report["names"].append(fields[0:2] + fields[-3:])
        arr = np.load(os.path.join(root, *parts))
        kind, i = fields[-3], int(fields[-2])
        if index == 0:                       # the executor's warm-up batch of zeros
            ok = not arr.any() if kind == "input" else True
        else:
            rows = slice((index - 1) * b, index * b)
            ref = x[i][rows] if kind == "input" else want[i][rows]
            ok = arr.dtype == ref.dtype and arr.shape == ref.shape and arr.tobytes() == np.ascontiguousarray(ref).tobytes()
        report["match"] = report["match"] and bool(ok)
print(json.dumps(report))
"""


@pytest.mark.parametrize("mode,kinds", [("all", {"input", "output"}), ("input", {"input"}), (None, {"output"})])
@pytest.mark.parametrize("name", ["balanced", "multi-io"])
def test_dump_files_hold_each_batchs_tensors(tmp_path, mode, kinds, name):
    dump_dir = tmp_path / "dump"
    dump_dir.mkdir()
    cfg = _config(tmp_path, _dump_doc(dump_dir, mode, names=(name,)))
    r = child_result(run_child(child_code(DUMP_CHILD), args=(cfg, name, "3", str(dump_dir))))
    assert r["indexes"] == [0, 1, 2, 3]          # the warm-up, then each batch in order
    assert r["match"], r
    n_in, n_out = {"balanced": (1, 1), "multi-io": (2, 2)}[name]
    per_index = (n_in if "input" in kinds else 0) + (n_out if "output" in kinds else 0)
    assert len(r["names"]) == 4 * per_index
    assert {n[2] for n in r["names"]} == kinds
    for time_dir, device, model_name, model_id in r["layout"]:
        assert len(time_dir) == 14 and time_dir.isdigit()        # YYYYMMDDHHMMSS
        assert device == "0" and model_name == name.replace(".", "_") and model_id.isdigit()
    for op_type, op_name, kind, index, ext in r["names"]:
        assert op_type == "Model" and op_name == name and ext == "npy"


def test_unlisted_model_is_not_dumped(tmp_path):
    dump_dir = tmp_path / "dump"
    dump_dir.mkdir()
    cfg = _config(tmp_path, _dump_doc(dump_dir, "all", names=("some-other-model",)))
    r = child_result(run_child(child_code(DUMP_CHILD), args=(cfg, "balanced", "2", str(dump_dir))))
    assert r["indexes"] == [] and list(dump_dir.iterdir()) == []


DUMP_API_CHILD = """
import ctypes, glob
lib = ctypes.CDLL(emulator.library_path())
lib.aclmdlSetDump.argtypes = [ctypes.c_char_p]
codes = {}
fastexec.init(acl_config=sys.argv[2] if len(sys.argv) > 2 else None)
codes["set_before_init"] = lib.aclmdlSetDump(sys.argv[1].encode())
codes["finalize_before_init"] = lib.aclmdlFinalizeDump()
codes["init"] = lib.aclmdlInitDump()
codes["init_again"] = lib.aclmdlInitDump()
if codes["init"] == 0:
    with fastexec.Device(0) as dev:
        before = fastexec.Model(emulator.sample_model("balanced"), device=dev)   # loaded before SetDump
        codes["set"] = lib.aclmdlSetDump(sys.argv[1].encode())
        after = fastexec.Model(emulator.sample_model("balanced"), device=dev)
        for m in (before, after):
            x = T.make_inputs("balanced", m.batch_size)
            fastexec.naive_run(m, x)
        codes["finalize"] = lib.aclmdlFinalizeDump()
        late = fastexec.Model(emulator.sample_model("balanced"), device=dev)
        fastexec.naive_run(late, T.make_inputs("balanced", late.batch_size))
        ids = {"before": before.model_id, "after": after.model_id, "late": late.model_id}
        for m in (before, after, late):
            m.close()
    root = json.load(open(sys.argv[1]))["dump"]["dump_path"]
    codes["dumped_models"] = sorted({int(p.split(os.sep)[-2]) for p in glob.glob(os.path.join(root, "*", "*", "*", "*", "*"))})
    codes["ids"] = ids
print(json.dumps(codes))
"""


def test_dump_api(tmp_path):
    dump_dir = tmp_path / "dump"
    dump_dir.mkdir()
    cfg = _config(tmp_path, _dump_doc(dump_dir, "output"), "dump.json")
    r = child_result(run_child(child_code(DUMP_API_CHILD), args=(cfg,)))
    assert r["set_before_init"] == DUMP_NOT_RUN and r["finalize_before_init"] == DUMP_NOT_RUN
    assert r["init"] == 0 and r["init_again"] == REPEAT_INITIALIZE
    assert r["set"] == 0 and r["finalize"] == 0
    # only the model loaded between aclmdlSetDump and aclmdlFinalizeDump dumps
    assert r["dumped_models"] == [r["ids"]["after"]]


def test_dump_api_refused_when_acl_init_configured_the_dump(tmp_path):
    dump_dir = tmp_path / "dump"
    dump_dir.mkdir()
    cfg = _config(tmp_path, _dump_doc(dump_dir), "dump.json")
    r = child_result(run_child(child_code(DUMP_API_CHILD), args=(cfg, cfg)))
    assert r["init"] == DUMP_ALREADY_RUN and r["set_before_init"] == DUMP_ALREADY_RUN


def test_profiler_writes_a_timeline(tmp_path):
    out = tmp_path / "prof"
    out.mkdir()
    cfg = _config(tmp_path, {"profiler": {"switch": "on", "output": str(out), "aicpu": "on"}})
    code = child_code("""
        fastexec.init(acl_config=sys.argv[1])
        with fastexec.Executor(emulator.sample_model("balanced"), trace=100) as ex:
            ex.run(T.make_inputs("balanced", 5 * ex.batch_size))
            tr = ex.trace()
        print(json.dumps({"pid": os.getpid(), "execs": len([e for e in tr["traceEvents"] if e.get("cat") == "execute"])}))
    """)
    r = child_result(run_child(code, args=(cfg,)))
    doc = json.loads((out / f"fxemu_timeline_{r['pid']}.json").read_text())
    tasks = [e for e in doc if e["ph"] == "X"]
    # every task: the warm-up batch and the five traced ones, each with its copy-in, execution and copy-out
    for cat in ("h2d", "execute", "d2h"):
        assert len([e for e in tasks if e["cat"] == cat]) == 6
    assert r["execs"] == 5
    execs = sorted((e["ts"], e["ts"] + e["dur"]) for e in tasks if e["cat"] == "execute")
    # back to back on the compute engine: one may start where the last ended, to the file's
    # 1 ns precision (the microsecond sums of ts + dur round in the last place)
    assert all(b[0] >= a[1] - 1e-3 for a, b in zip(execs, execs[1:]))


def test_cli_acl_json(tmp_path):
    dump_dir = tmp_path / "dump"
    dump_dir.mkdir()
    cfg = _config(tmp_path, _dump_doc(dump_dir, "output", names=("tiny",)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_")}
    env.update(FASTEXEC_BACKEND="emulator", FASTEXEC_EMU_FAST="1")
    proc = subprocess.run([sys.executable, "-m", "fastexec.cli", "bench", "tiny", "--batches", "3", "--warmup", "0",
                           "--calibration-batches", "0", "--no-progress", "--acl-json", cfg],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(list(dump_dir.rglob("*.output.0.npy"))) >= 3
    proc = subprocess.run([sys.executable, "-m", "fastexec.cli", "bench", "tiny", "--acl-json", str(tmp_path / "nope.json")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "--acl-json" in proc.stderr and "no such file" in proc.stderr
