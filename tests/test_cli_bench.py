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
    B = r["model"]["batch_size"]
    if batches is not None:
        assert r["batches"] == batches
    assert r["samples"] == r["batches"] * B
    t = r["throughput"]
    assert t["samples_per_s"] * r["wall_s"] == pytest.approx(r["samples"], rel=1e-9)
    assert t["batches_per_s"] * r["wall_s"] == pytest.approx(r["batches"], rel=1e-9)
    lat = r["latency_ms"]
    for name, row in lat.items():
        assert row["p50"] <= row["p90"] <= row["p95"] <= row["p99"], (name, row)
    assert t["compute_only_samples_per_s"] == pytest.approx(1e3 * B / lat["execute"]["mean"])
    h, c, d = lat["h2d"]["mean"], lat["execute"]["mean"], lat["d2h"]["mean"]
    # one engine of each kind per device: overlap is bound by the slowest stage, serial by the
    # sum (spread over the instances' streams, but never below the slowest stage)
    k = r["settings"]["instances"]
    period = max(h, c, d) if r["settings"]["mode"] == "overlap" else max((h + c + d) / k, h, c, d)
    assert r["bound"]["period_ms"] == pytest.approx(period)
    assert r["bound"]["samples_per_s"] == pytest.approx(1e3 * B / period)
    assert r["bound"]["efficiency"] == pytest.approx(t["samples_per_s"] / r["bound"]["samples_per_s"])


def test_bench_default_model_json(tmp_path):
    out = tmp_path / "out.json"
    proc = bench("--batches", "50", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())
    check_consistent(r, batches=50)
    assert r["schema"] == "fastexec.bench/1"
    assert Path(r["model"]["path"]).name == "resnet50-int8.om"
    assert r["model"]["inputs"] == [{"name": "data", "shape": [8, 3, 224, 224], "dtype": "uint8", "format": "NCHW", "bytes": 1204224}]
    assert r["backend"]["emulator"] is True and r["backend"]["soc"] == "Ascend310P3"
    assert r["settings"]["execute_api"] == "aclmdlExecuteAsync"
    assert r["settings"]["mode"] == "overlap" and r["settings"]["depth"] == 4   # the defaults
    # real modelled timing: the execute stage is the model's 1.14 ms (the median: on a loaded
    # machine a late emulator worker stretches some batches' stages, not the typical one)
    assert r["latency_ms"]["execute"]["p50"] == pytest.approx(1.14, abs=0.02)
    # the summary names the figures
    for text in ("throughput", "samples/s", "compute only", "bound", "reached", "h2d", "execute", "d2h", "end_to_end"):
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
])
def test_impossible_flags(flags, fragment):
    one_line_error(bench(*flags), 2, "error", fragment)
