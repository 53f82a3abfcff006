"""fastexec bench: the command, its JSON and its errors (run as a user would, in subprocesses)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import fastexec
from fastexec import emulator

SCHEMA = json.loads((Path(fastexec.__file__).parent / "bench_schema.json").read_text())


def bench(*args, env_extra=None, timeout=120):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "fastexec.cli", "bench", "--no-progress", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


def check_consistent(r: dict, batches=None):
    jsonschema.validate(r, SCHEMA)
    dyn = r["settings"]["dynamic"]
    B = dyn["samples_per_batch"] if dyn else r["model"]["batch_size"]
    if batches is not None:
        assert r["batches"] == batches
    assert r["samples"] == r["batches"] * B
    t = r["throughput"]
    assert t["samples_per_s"] * r["wall_s"] == pytest.approx(r["samples"], rel=1e-9)
    assert t["batches_per_s"] * r["wall_s"] == pytest.approx(r["batches"], rel=1e-9)
    lat = r["latency_ms"]
    for name, row in lat.items():
        assert row["min"] <= row["p50"] <= row["p90"] <= row["p95"] <= row["p99"] <= row["max"], (name, row)
        assert row["min"] <= row["mean"] <= row["max"], (name, row)
    cal = r["calibration"]
    if cal is not None:
        h, c, d = cal["h2d_ms"], cal["execute_ms"], cal["d2h_ms"]
        assert r["bound"]["source"] == "calibration"
    else:
        h, c, d = lat["h2d"]["mean"], lat["execute"]["mean"], lat["d2h"]["mean"]
    n_dev = len(r["settings"]["devices"])
    assert r["settings"]["device"] == r["settings"]["devices"][0]
    assert r["bound"]["engines"] == {"h2d": n_dev, "compute": n_dev, "d2h": n_dev}
    assert t["compute_only_samples_per_s"] == pytest.approx(n_dev * 1e3 * B / c)
    assert r["device_utilization"] == pytest.approx(r["batches"] * c / 1e3 / r["wall_s"] / n_dev)
    # one engine of each kind per device: overlap is bound by the slowest stage, serial by the
    # sum (spread over the instances' streams, but never below the slowest stage); batches are
    # spread evenly over the devices
    k = r["settings"]["instances"]
    period = max(h, c, d) if r["settings"]["mode"] == "overlap" else max((h + c + d) / k, h, c, d)
    period /= n_dev
    assert r["bound"]["period_ms"] == pytest.approx(period)
    assert r["bound"]["samples_per_s"] == pytest.approx(1e3 * B / period)
    assert r["bound"]["efficiency"] == pytest.approx(t["samples_per_s"] / r["bound"]["samples_per_s"])
    assert r["tool"] == {"name": "fastexec", "version": fastexec.__version__}
    assert r["argv"][0] == "fastexec" and "bench" in r["argv"]


def test_bench_default_model_json(tmp_path):
    out = tmp_path / "out.json"
    proc = bench("--batches", "50", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    check_consistent(r, batches=50)
    assert r["schema"] == "fastexec.bench/2"
    assert Path(r["model"]["path"]).name == "resnet50-int8.om"
    assert r["model"]["inputs"] == [{"name": "data", "shape": [8, 3, 224, 224], "dtype": "uint8", "format": "NCHW", "bytes": 1204224,
                                    "range": [[8, 8], [3, 3], [224, 224], [224, 224]]}]
    assert r["backend"]["emulator"] is True and r["backend"]["soc"] == "Ascend310P3"
    assert r["settings"]["execute_api"] == "aclmdlExecuteAsync"
    assert r["settings"]["mode"] == "overlap" and r["settings"]["depth"] == 4   # the defaults
    # real modelled timing: the execute stage is the model's 1.14 ms (the median: on a loaded
    # machine a late emulator worker stretches some batches' stages, not the typical one)
    assert r["latency_ms"]["execute"]["p50"] == pytest.approx(1.14, abs=0.02)
    # the summary names the figures
    for text in ("throughput", "samples/s", "compute only", "bound", "reached", "h2d", "execute", "d2h", "end_to_end",
                 "calibrated", "stability", "too short"):
        assert text in proc.stdout
    assert "using the bundled ACL emulator" in proc.stderr  # announced, since no CANN here


def test_bench_compare_naive_and_options(tmp_path):
    out = tmp_path / "out.json"
    proc = bench("tiny", "--batches", "60", "--depth", "3", "--instances", "2", "--warmup", "5", "--compare", "naive",
                 "--json", str(out), env_extra={"FASTEXEC_EMU_FAST": "1"})
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    check_consistent(r, batches=60)
    assert r["settings"]["depth"] == 3 and r["settings"]["instances"] == 2 and r["settings"]["warmup_batches"] == 5
    naive = r["compare"]["naive"]
    assert naive["speedup"] == pytest.approx(r["throughput"]["samples_per_s"] / naive["samples_per_s"])
    assert "speedup" in proc.stdout


def test_bench_duration_serial_mode(tmp_path):
    out = tmp_path / "out.json"
    proc = bench("dynamic-batch", "--duration", "0.3", "--mode", "serial", "--json", str(out),
                 env_extra={"FASTEXEC_EMU_FAST": "1"})
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    check_consistent(r)
    assert r["batches"] >= 50 and r["settings"]["duration_s"] == 0.3
    assert r["settings"]["mode"] == "serial" and r["settings"]["depth"] == 2


@pytest.mark.parametrize("mode", ["overlap", "serial"])
def test_bench_on_several_devices(tmp_path, mode):
    """--device 1,3 spreads the batches over two of four emulated devices: the JSON records both,
    the bound and the compute-only rate count one engine of each kind per device."""
    out = tmp_path / "out.json"
    proc = bench("multi-io", "--batches", "40", "--device", "1,3", "--instances", "2", "--mode", mode,
                 "--json", str(out), env_extra={"FASTEXEC_EMU_FAST": "1", "FASTEXEC_EMU_DEVICES": "4"})
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    check_consistent(r, batches=40)
    assert r["settings"]["devices"] == [1, 3] and r["settings"]["instances"] == 2
    assert "devices 1,3" in proc.stdout and "/ 2 devices, one engine of each kind per device" in proc.stdout


def test_bench_model_path_and_v2_under_ipv350(tmp_path):
    out = tmp_path / "out.json"
    proc = bench(emulator.sample_model("multi-io"), "--batches", "20", "--stream-sync-timeout", "1000", "--json", str(out),
                 env_extra={"FASTEXEC_EMU_FAST": "1", "FASTEXEC_EMU_PROFILE": "ipv350"})
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    check_consistent(r, batches=20)
    assert r["settings"]["execute_api"] == "aclmdlExecuteAsyncV2"
    assert r["settings"]["exec_config"] == {"stream_sync_timeout_ms": 1000}


def one_line_error(proc, code, *fragments):
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = [l for l in proc.stderr.splitlines() if not l.startswith("fastexec: WARNING")]
    assert len(lines) == 1, proc.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def usage_error(proc, *fragments):
    """argparse's convention: exit 2, the usage line, then 'prog: error: message'."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.startswith("usage: fastexec"), proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("fastexec") and ": error: " in last, proc.stderr
    for f in fragments:
        assert f in last, (f, last)


def test_missing_model(tmp_path):
    one_line_error(bench(str(tmp_path / "nope.om"), "--batches", "5"), 1, "error", "nope.om", "no model file")


def test_model_that_is_a_directory(tmp_path):
    one_line_error(bench(str(tmp_path), "--batches", "5"), 1, "error", "is not a file")


def test_corrupt_model(tmp_path):
    bad = tmp_path / "bad.om"
    bad.write_text("fastexec-emulator-model 1\nname x\nbogus line\n")
    one_line_error(bench(str(bad), "--batches", "5"), 1, "AclError", "ACL_ERROR_PARSE_MODEL")


def test_v2_where_the_soc_lacks_it():
    one_line_error(bench("tiny", "--batches", "5", "--stream-sync-timeout", "100", env_extra={"FASTEXEC_EMU_FAST": "1"}),
                   1, "AclNotAvailableError", "aclmdlExecuteAsyncV2")


@pytest.mark.parametrize("flags,fragment", [
    (["--depth", "0"], "--depth"),
    (["--batches", "0"], "--batches"),
    (["--batches", "10", "--duration", "1"], "not allowed with"),
    (["--duration", "-1"], "--duration"),
    (["--mode", "sideways"], "--mode"),
    (["--stream-sync-timeout", "-5"], "--stream-sync-timeout"),
    (["--instances", "x"], "--instances"),
    (["--compare", "everything"], "--compare"),
    (["--device", "0,0"], "lists a device twice"),
    (["--device", "0,x"], "--device"),
    (["--device", "-1"], "--device"),
])
def test_impossible_flags(flags, fragment):
    usage_error(bench(*flags), fragment)


# ---------------------------------------------------------------- issue 15: figures and command line


def fx(*args, env_extra=None, cwd=None, timeout=120):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "fastexec.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=cwd)


def test_version_and_plain_command_prints_help():
    proc = fx("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"fastexec {fastexec.__version__}"
    proc = fx()
    assert proc.returncode == 0 and proc.stdout.startswith("usage: fastexec") and "bench" in proc.stdout


def test_unknown_flag_prints_usage_and_a_close_match():
    usage_error(bench("--frobnicate"), "unrecognized arguments: --frobnicate")
    usage_error(bench("--batchs", "5"), "did you mean --batches?")
    usage_error(bench("--batches", "abc"), "not a whole number: 'abc'")
    assert "_positive_int" not in bench("--batches", "abc").stderr


@pytest.mark.parametrize("value", ["-3", "x"])
def test_warmup_is_validated(value):
    usage_error(bench("--warmup", value), "--warmup")


def test_sample_name_close_match():
    one_line_error(bench("resnet50-int9", "--batches", "5"), 1, "did you mean resnet50-int8?")


@pytest.mark.parametrize("flag", ["--json", "--export-times"])
def test_unwritable_output_fails_before_the_run(tmp_path, flag):
    proc = bench("--batches", "100000", flag, str(tmp_path / "nope" / "x.json"))
    usage_error(proc, flag, "no folder")
    assert "using the bundled ACL emulator" not in proc.stderr      # the runtime was never loaded
    proc = bench("--batches", "100000", flag, str(tmp_path))
    usage_error(proc, "is a folder")


def test_json_to_stdout_summary_to_stderr(tmp_path):
    times = tmp_path / "times.csv"
    proc = bench("tiny", "--batches", "120", "--json", "-", "--export-times", str(times),
                 env_extra={"FASTEXEC_EMU_FAST": "1"})
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    check_consistent(r, batches=120)
    assert "throughput" in proc.stderr and "bound" in proc.stderr
    assert not (Path.cwd() / "-").exists()
    rows = times.read_text().splitlines()
    assert rows[0] == "batch,h2d_ms,execute_ms,d2h_ms,end_to_end_ms,host_staging_ms,host_enqueue_ms"
    assert len(rows) == 1 + 120 and r["export_times"] == {"path": str(times), "batches": 120, "dropped": 0}
    execute = [float(row.split(",")[2]) for row in rows[1:]]
    assert r["latency_ms"]["execute"]["min"] == pytest.approx(min(execute), abs=1e-5)
    assert r["latency_ms"]["execute"]["max"] == pytest.approx(max(execute), abs=1e-5)
    assert r["started_at"].endswith("+00:00") and r["host"]["cpu_count"] >= 1


def test_short_run_is_flagged(tmp_path):
    proc = bench("tiny", "--batches", "20", "--json", "-", env_extra={"FASTEXEC_EMU_FAST": "1"})
    r = json.loads(proc.stdout)
    assert any(w.startswith("too short") for w in r["warnings"]), r["warnings"]
    assert r["stability"]["stable"] is None and "too few windows" in r["stability"]["verdict"]
    assert "warning: too short" in proc.stderr


def test_stability_windows_and_warnings():
    from fastexec import cli

    # 50-batch chunks every 0.1 s for 4 s, steady: four 1 s windows of 500 batches
    marks = [(0.1 * (i + 1), 50 * (i + 1)) for i in range(40)]
    s = cli._stability(marks, 8)
    assert len(s["windows"]) == 4 and s["stable"] is True and s["spread"] == pytest.approx(0, abs=1e-9)
    assert all(w["batches"] == 500 for w in s["windows"])
    # the last window half as fast: unstable
    slow = marks[:30] + [(3.0 + 0.2 * (i + 1), 1500 + 50 * (i + 1)) for i in range(5)]
    s = cli._stability(slow, 8)
    assert s["stable"] is False and "unstable" in s["verdict"]
    # windows need 50 batches as well as 1 s
    assert cli._stability([(0.5 * (i + 1), 10 * (i + 1)) for i in range(10)], 8)["windows"][0]["batches"] >= 50


def test_warnings_for_enqueue_copy_and_overruns():
    from fastexec import cli

    row = {k: 0.1 for k in ("mean", "min", "p50", "p90", "p95", "p99", "max")}
    r = {"interrupted": False, "wall_s": 5.0, "batches": 1000, "emulator_overruns": 7, "export_times": None,
         "latency_ms": {k: dict(row) for k in ("h2d", "execute", "d2h", "end_to_end", "host_enqueue", "host_staging")},
         "calibration": {"batches": 50, "h2d_ms": 2.0, "execute_ms": 1.0, "d2h_ms": 0.1},
         "stability": {"stable": True, "verdict": "stable"}, "bound": {"engines": {"h2d": 1, "compute": 1, "d2h": 1}}}
    r["latency_ms"]["host_enqueue"]["mean"] = 0.9
    text = " | ".join(cli._warnings(r))
    assert "enqueue-bound" in text and "copy-bound: h2d" in text and "7 overruns" in text and "too short" not in text
    # with 4 devices the host queues 4 batches per compute time: 0.3 ms of a 1 ms batch is too much
    r["latency_ms"]["host_enqueue"]["mean"] = 0.3
    assert not any("enqueue-bound" in w for w in cli._warnings(r))
    r["bound"]["engines"] = {"h2d": 4, "compute": 4, "d2h": 4}
    text = " | ".join(cli._warnings(r))
    assert "enqueue-bound" in text and "per device (4 devices: 0.2500 ms per batch)" in text


def test_multi_line_error_printed_whole():
    proc = fx("info", env_extra={"FASTEXEC_BACKEND": "ascend"})
    assert proc.returncode == 1
    assert proc.stderr.count("libascendcl.so") >= 3 and "tried" in proc.stderr, proc.stderr


def test_binary_om_on_the_emulator_says_so(tmp_path):
    om = tmp_path / "real.om"
    om.write_bytes(b"IMOD\x00\x00\x01\x00" + bytes(range(256)) * 8)
    for args in (["inspect", str(om)], ["bench", str(om), "--batches", "5"]):
        proc = fx(*args)
        assert proc.returncode == 1
        assert "emulator runs only its own text model format" in proc.stderr and "CANN" in proc.stderr, proc.stderr


def test_info_check_self_test():
    proc = fx("info", "--check", env_extra={"FASTEXEC_EMU_FAST": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "self-test  passed" in proc.stdout
    assert proc.stdout.count("  ok  ") == 7 and proc.stdout.count(" GB/s (") == 2


def test_source_tree_without_extension_says_so(tmp_path):
    """A copy of the package without its built extension: the ImportError names the source tree
    and both fixes."""
    import shutil

    src = Path(fastexec.__file__).parent
    dst = tmp_path / "fastexec"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.so", "*.pyd", "_core.c", "emulator", "__pycache__"))
    proc = subprocess.run([sys.executable, "-S", "-c", "import fastexec"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "ImportError" in proc.stderr and "source tree" in proc.stderr
    assert "pip install -e ." in proc.stderr and "another folder" in proc.stderr


@pytest.mark.timing
def test_bound_is_a_bound_with_two_instances():
    """trtexec's separate profile: the bound comes from uncontended stage times, so two
    instances sharing the one compute engine reach it (not twice it), and compute-only
    throughput does not halve."""
    runs = {}
    for k in (1, 2):
        proc = bench("--instances", str(k), "--json", "-")           # the default: 3 s, three windows
        assert proc.returncode == 0, proc.stderr
        runs[k] = r = json.loads(proc.stdout)
        check_consistent(r)
        assert r["calibration"]["batches"] == 50 and r["settings"]["duration_s"] == 3.0
        assert len(r["stability"]["windows"]) >= 3
        # a bound: exceeded only by noise, whatever the machine's load
        assert r["bound"]["efficiency"] <= 1.02, r["bound"]
    # and as close with two instances as with one (a ratio within one run: a busy host slows
    # both alike; the contaminated bound of old made two instances look twice as good)
    eff = {k: runs[k]["bound"]["efficiency"] for k in (1, 2)}
    assert eff[2] >= 0.85 * eff[1], eff
    one, two = (runs[k]["throughput"]["compute_only_samples_per_s"] for k in (1, 2))
    assert two == pytest.approx(one, rel=0.10)


def test_ctrl_c_prints_what_was_measured(tmp_path):
    """SIGINT during the measurement: the summary and the JSON of the batches measured so far,
    exit 130. Progress is watched through --export-times, which the command writes per chunk."""
    from fastexec.emulator.model_file import ModelDef, TensorDef, write_model
    from test_cli_run import interrupt_when

    slow = write_model(tmp_path / "slow.om", ModelDef(
        name="slow", inputs=(TensorDef("x", "float32", "ND", (1, 16)),),
        outputs=(TensorDef("y", "float32", "ND", (1, 16)),), kernel="identity", compute_us=2000.0))
    times, out = tmp_path / "times.csv", tmp_path / "out.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_")}
    proc = subprocess.Popen([sys.executable, "-m", "fastexec.cli", "bench", str(slow), "--duration", "60",
                             "--no-progress", "--warmup", "0", "--calibration-batches", "5",
                             "--export-times", str(times), "--json", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stdout, stderr = interrupt_when(proc, lambda: times.exists() and len(times.read_text().splitlines()) > 100,
                                    "batches measured")
    assert proc.returncode == 130, (stdout, stderr)
    r = json.loads(out.read_text())
    assert r["interrupted"] is True and r["batches"] >= 100
    assert any(w.startswith("interrupted") for w in r["warnings"])
    assert "(interrupted)" in stdout and "throughput" in stdout
    assert len(times.read_text().splitlines()) == 1 + r["batches"]


def test_bench_dym_batch_records_the_gear_and_its_time(tmp_path):
    """Real timing: --dym-batch 2 measures batches of 2 samples at gear 2 (modelled 100 + 2 x 20 us)."""
    out = tmp_path / "out.json"
    proc = bench("dynamic-batch", "--dym-batch", "2", "--batches", "200", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    check_consistent(r, batches=200)
    assert r["settings"]["dynamic"] == {"kind": "dynamic_batch", "samples_per_batch": 2, "gear": 2,
                                        "shapes": {"images": [2, 3, 16, 16]}}
    assert r["samples"] == 400 and r["model"]["batch_size"] == 8
    assert r["latency_ms"]["execute"]["p50"] == pytest.approx(0.14, abs=0.01)
    assert r["calibration"]["execute_ms"] == pytest.approx(0.14, abs=0.01)
    assert r["drains"] == 0
    assert "gear 2" in proc.stdout


@pytest.mark.parametrize("args,shapes", [
    (["dynamic-hw", "--dymHW", "32,32"], {"image": [2, 3, 32, 32]}),
    (["dynamic-dims", "--dymDims", "ids:4,64;mask:4,4"], {"ids": [4, 64], "mask": [4, 4]}),
    (["dynamic-shape", "--dym-shape", "tokens:3,50", "--outputSize", "1024"], {"tokens": [3, 50]}),
])
def test_bench_dynamic_shapes(args, shapes):
    proc = bench(*args, "--batches", "60", "--calibration-batches", "5", "--json", "-", env_extra={"FASTEXEC_EMU_FAST": "1"})
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    check_consistent(r, batches=60)
    assert r["settings"]["dynamic"]["shapes"] == shapes
    assert r["settings"]["dynamic"]["samples_per_batch"] == list(shapes.values())[0][0]


@pytest.mark.parametrize("args,needle", [
    (["dynamic-hw"], "is a dynamic-hw model: give the shape to measure with --dym-hw H,W"),
    (["dynamic-hw", "--dym-hw", "7,7"], "--dym-hw: 7,7 is no gear of the model; the gears are 16,16, 32,32, 48,64"),
    (["dynamic-dims", "--dym-dims", "ids:1,16"], "--dym-dims: give a shape for every input (ids, mask); missing 'mask'"),
    (["dynamic-shape", "--dym-shape", "tokens:9,5"], "input 'tokens': shape (9, 5) is outside the model's range"),
    (["tiny", "--dym-batch", "2"], "--dym-batch: "),
    (["dynamic-batch", "--dym-batch", "9"], "9 rows is more than the largest gear; the gears are 1, 2, 4, 8"),
    (["dynamic-batch", "--dym-batch", "2", "--dym-hw", "1,1"], "not allowed with argument"),
])
def test_bench_dynamic_option_errors(args, needle):
    proc = bench(*args, "--batches", "5", env_extra={"FASTEXEC_EMU_FAST": "1"})
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert needle in proc.stderr, proc.stderr
