"""fastexec run's streaming core (fastexec/filestream.py) and what it adds to the command: the
JSON summary, --outfmt, --resume, SIGTERM, read errors found by the reader threads, a full disk,
batches grouped by shape. Outputs are checked bit for bit against Executor.run on the stacked
inputs, in this process (fast mode) or through the command as a user runs it."""
import errno
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import fastexec
from fastexec import batchfiles, filestream
from fastexec.emulator.model_file import ModelDef, TensorDef, write_model
from test_cli_run import (all_files, check_written, expected_outputs, interrupt_when, make_data, model_path, ok,
                          one_line_error, read_out, run_cli, same, save_npys, specs_of)


def one_sample_folder(folder, name, n, seed=0):
    """n one-sample .npy files for `name`'s first input; their stems and the stacked samples."""
    spec = specs_of(name)[0][0]
    xs = [make_data(spec, 1, seed + i, single=True) for i in range(n)]
    stems = [f"s{i:04d}" for i in range(n)]
    save_npys(folder, xs, stems)
    return stems, np.stack(xs)


def stream_in_process(device, name, sources, out, **kw):
    """batchfiles.plan + filestream.stream with a real executor: (units, figures or exception)."""
    with fastexec.Model(str(model_path(name)), device=device) as model, fastexec.Executor(model, depth=6) as ex:
        units = batchfiles.plan(model.inputs, [str(s) for s in sources])
        dirs = batchfiles.output_dirs(out, model.outputs)
        before = kw.pop("before_stream", None)
        if before is not None:
            before(units)
        try:
            return units, filestream.stream(ex, units, model.inputs, dirs, **kw)
        except Exception as exc:
            return units, exc


# ---------------------------------------------------------------- batches, zero copy or not


def test_plan_batches_groups_by_shape_and_keeps_every_row():
    U = batchfiles.Unit
    units = [U("a", [], 3, shapes=[(4,)]), U("b", [], 1, shapes=[(2, 2)]), U("c", [], 6, shapes=[(4,)]),
             U("d", [], 2, shapes=[(2, 2)])]
    batches = filestream.plan_batches(units, 4)
    assert [(b.shapes, b.rows) for b in batches] == [(((4,),), 4), (((4,),), 4), (((4,),), 1), (((2, 2),), 3)]
    # every unit's rows once, in order, each piece inside its batch
    for ui, u in enumerate(units):
        pieces = [(p.start, p.n) for b in batches for p in b.pieces if p.unit == ui]
        assert sum(n for _, n in pieces) == u.rows and [s for s, _ in pieces] == sorted(s for s, _ in pieces)
    for b in batches:
        assert sum(p.n for p in b.pieces) == b.rows and all(p.at + p.n <= b.rows for p in b.pieces)
    assert [p.unit for p in filestream.plan_batches(units, 4, todo=[1, 3])[0].pieces] == [1, 3]


@pytest.mark.parametrize("zero_copy", [True, False])
def test_stream_zero_copy_and_submitted_batches_agree(zero_copy, tmp_path, device):
    """Files read straight into the staged slots, or into arrays submitted (the path batches of
    another shape take), give Executor.run's outputs; a multi-batch .npy and an .npz included."""
    name = "dynamic-batch"
    spec = specs_of(name)[0][0]
    rows = [1, 3, 8, 13, 2]
    xs = [make_data(spec, n, 50 + i) for i, n in enumerate(rows)]
    save_npys(tmp_path / "in", xs, [f"f{i}" for i in range(len(rows))])
    out = tmp_path / "out"
    units, fig = stream_in_process(device, name, [tmp_path / "in"], out, zero_copy=zero_copy)
    assert isinstance(fig, dict), fig
    assert fig["completed"] == list(range(len(rows))) and fig["samples"] == sum(rows)
    exp = expected_outputs(device, name, [np.concatenate(xs)])
    got = read_out(out, specs_of(name)[1][0].name)
    start = 0
    for i, n in enumerate(rows):
        same(got[f"f{i}"], exp[0][start:start + n], f"f{i}")
        start += n


def test_fortran_order_npy_is_decoded_by_numpy(tmp_path, device):
    spec = specs_of("multi-io")[0]
    a = np.asfortranarray(make_data(spec[0], 5, 1))
    b = make_data(spec[1], 5, 2)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    out = tmp_path / "out"
    ok(run_cli("multi-io", [tmp_path / "a.npy", tmp_path / "b.npy"], out))
    check_written(out, specs_of("multi-io")[1], ["a"], expected_outputs(device, "multi-io", [a, b]), [5])


# ---------------------------------------------------------------- the JSON summary, --outfmt


def test_json_summary_maps_every_input(tmp_path, device):
    stems, x = one_sample_folder(tmp_path / "in", "tiny", 20)
    out = tmp_path / "out"
    proc = ok(run_cli("tiny", [tmp_path / "in"], out, "--json", tmp_path / "run.json", "--calibration-batches", "5"))
    r = json.loads((tmp_path / "run.json").read_text())
    assert r["tool"]["name"] == "fastexec" and r["tool"]["version"] == fastexec.__version__
    assert r["argv"][:2] == ["fastexec", "run"] and r["host"]["cpu_count"] == os.cpu_count()
    assert r["samples"] == 20 and r["files_in"] == 20 and r["files_written"] == 20
    assert r["throughput"]["samples_per_s"] == pytest.approx(20 / r["wall_s"])
    assert r["bound"]["source"] == "calibration" and r["calibration"]["batches"] == 5
    for stage in ("h2d", "execute", "d2h", "end_to_end", "host_enqueue"):
        assert set(r["latency_ms"][stage]) == {"mean", "min", "p50", "p90", "p95", "p99", "max"}
    assert r["latency_ms"]["execute"]["mean"] is not None
    assert {"read_busy_s", "write_busy_s", "device_busy_s", "reader_utilization", "writer_utilization"} <= set(r["io"])
    assert [f["input"] for f in r["files"]] == [[str(tmp_path / "in" / f"{s}.npy")] for s in stems]
    assert [f["outputs"] for f in r["files"]] == [[f"y/{s}.npy"] for s in stems]
    assert {f["status"] for f in r["files"]} == {"written"}
    assert all((out / f["outputs"][0]).is_file() for f in r["files"])
    assert "throughput" in proc.stdout and "file i/o" in proc.stdout
    # to stdout: the JSON alone there, the summary on stderr
    proc = ok(run_cli("tiny", [tmp_path / "in"], tmp_path / "out2", "--json", "-"))
    assert json.loads(proc.stdout)["samples"] == 20 and "throughput" in proc.stderr


@pytest.mark.parametrize("flag", ["npy", "bin", "txt", "NPY", "BIN", "TXT"])
def test_outfmt(flag, tmp_path, device):
    ins, outs, _ = specs_of("multi-io")
    rows = [1, 4]
    a = [make_data(ins[0], n, 10 + i) for i, n in enumerate(rows)]
    b = [make_data(ins[1], n, 20 + i) for i, n in enumerate(rows)]
    save_npys(tmp_path / "A", a, ["p", "q"])
    save_npys(tmp_path / "B", b, ["p", "q"])
    out = tmp_path / "out"
    ok(run_cli("multi-io", [tmp_path / "A", tmp_path / "B"], out, "--outfmt", flag))
    exp = expected_outputs(device, "multi-io", [np.concatenate(a), np.concatenate(b)])
    fmt = flag.lower()
    manifest = json.loads((out / "fastexec-run.json").read_text())
    assert sorted(manifest["files"]) == sorted(f"{s.name}/{st}.{fmt}" for s in outs for st in ("p", "q"))
    for spec, e in zip(outs, exp):
        start = 0
        for stem, n in zip(["p", "q"], rows):
            want = e[start:start + n]
            start += n
            path = out / spec.name / f"{stem}.{fmt}"
            assert sorted(os.listdir(out / spec.name)) == [f"p.{fmt}", f"q.{fmt}"]
            if fmt == "npy":
                same(np.load(path), want, stem)
            elif fmt == "bin":
                assert path.read_bytes() == want.tobytes()
            else:
                got = np.loadtxt(path, dtype=np.float64, ndmin=2).astype(want.dtype)
                same(got.reshape(want.shape), want, stem)


def test_outfmt_refuses_other_values(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(16, np.float32))
    proc = run_cli("tiny", [tmp_path / "x.npy"], tmp_path / "out", "--outfmt", "csv")
    assert proc.returncode == 2 and "--outfmt" in proc.stderr and "npy, bin or txt" in proc.stderr


# ---------------------------------------------------------------- interruption and --resume


def slow_identity(tmp_path, compute_us=20000.0):
    return write_model(tmp_path / "slow.om", ModelDef(
        name="slow", inputs=(TensorDef("x", "float32", "ND", (1, 16)),),
        outputs=(TensorDef("y", "float32", "ND", (1, 16)),), kernel="identity", compute_us=compute_us))


def start_run(model, src, out, *flags):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_")}
    env.update({"FASTEXEC_BACKEND": "emulator", "FASTEXEC_EMU_FAST": "0"})
    return subprocess.Popen([sys.executable, "-m", "fastexec.cli", "run", str(model), "--input", str(src),
                             "--output", str(out), "--no-progress", "--calibration-batches", "0", *map(str, flags)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def stop_part_way(proc, out, sig):
    return interrupt_when(proc, lambda: (out / "y").is_dir() and len(list((out / "y").glob("*.npy"))) >= 5,
                          "outputs", sig)


@pytest.mark.parametrize("sig,code,word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_stop_then_resume(sig, code, word, tmp_path):
    """Stopped part-way: only complete outputs, no temporary file, the manifest lists what
    completed; --resume writes the rest and leaves the completed files alone."""
    model = slow_identity(tmp_path)
    n = 150                                             # 150 batches x 20 ms: about 3 s uninterrupted
    xs = {f"s{i:04d}": np.arange(16, dtype=np.float32) + i for i in range(n)}
    save_npys(tmp_path / "in", list(xs.values()), list(xs))
    out = tmp_path / "out"
    proc = start_run(model, tmp_path / "in", out)
    stdout, stderr = stop_part_way(proc, out, sig)
    assert proc.returncode == code, (proc.returncode, stdout, stderr)
    assert word in stderr
    files = [p for p in all_files(out) if p.name != "fastexec-run.json"]
    assert not [p for p in files if p.name.endswith(".part")] and all(p.suffix == ".npy" for p in files)
    manifest = json.loads((out / "fastexec-run.json").read_text())
    assert manifest["complete"] is False and word in manifest["stopped"]
    assert sorted(manifest["completed"]) == sorted(p.stem for p in files)
    assert 5 <= len(files) < n
    assert sorted(p.stem for p in files) == sorted(xs)[:len(files)]        # in order
    for p in files:
        same(np.load(p), xs[p.stem], p.name)
    first = {p.name: p.stat().st_ino for p in files}
    # resume: the rest, the completed ones kept (same inodes: not rewritten)
    proc = start_run(model, tmp_path / "in", out, "--resume", "--json", tmp_path / "r.json")
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, (stdout, stderr)
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["files_skipped"] == len(files) and r["samples"] == n - len(files)
    assert sum(f["status"] == "skipped" for f in r["files"]) == len(files) and len(r["files"]) == n
    got = read_out(out, "y")
    assert sorted(got) == sorted(xs)
    for stem, y in got.items():
        same(y, xs[stem], stem)
    assert {p.name: p.stat().st_ino for p in (out / "y").iterdir() if p.name in first} == first
    manifest = json.loads((out / "fastexec-run.json").read_text())
    assert manifest["complete"] is True and sorted(manifest["completed"]) == sorted(xs)


@pytest.mark.parametrize("flags,what", [(["--outfmt", "bin"], "outfmt"), (["--limit", "2"], "limit")])
def test_resume_refuses_other_options(flags, what, tmp_path):
    save_npys(tmp_path / "in", [np.zeros(16, np.float32)] * 3, ["a", "b", "c"])
    out = tmp_path / "out"
    ok(run_cli("tiny", [tmp_path / "in"], out))
    before = {p: p.stat().st_mtime_ns for p in all_files(out)}
    line = one_line_error(run_cli("tiny", [tmp_path / "in"], out, "--resume", *flags), "--resume refused", what)
    assert line.startswith("fastexec run: error: ")
    assert {p: p.stat().st_mtime_ns for p in all_files(out)} == before


def test_resume_refuses_another_model_or_no_manifest(tmp_path):
    save_npys(tmp_path / "in", [np.zeros((1, 16), np.float32)], ["a"])
    out = tmp_path / "out"
    ok(run_cli("tiny", [tmp_path / "in"], out))
    model = slow_identity(tmp_path, 10.0)
    one_line_error(run_cli(model, [tmp_path / "in"], out, "--resume"), "--resume refused", "model")
    one_line_error(run_cli("tiny", [tmp_path / "in"], tmp_path / "new", "--resume"), "--resume refused",
                   "fastexec-run.json")
    # a complete run resumed: nothing to do, every file skipped
    proc = ok(run_cli("tiny", [tmp_path / "in"], out, "--resume"))
    assert "1 skipped" in proc.stdout


# ---------------------------------------------------------------- bad input found by a reader, a full disk


@pytest.mark.parametrize("damage,fragment", [
    ("truncate", "truncated"),
    ("reshape", "expects samples of shape"),
    ("remove", "No such file"),
])
def test_reader_error_names_the_file_and_writes_every_file_before_it(damage, fragment, tmp_path, device):
    """A file that changes between planning and reading (the only way a reader meets a bad file
    the plan did not) stops the run at that file: every file before it is written, the error
    names it and its index, no temporary file stays."""
    n, bad = 30, 19
    stems, x = one_sample_folder(tmp_path / "in", "tiny", n)
    path = tmp_path / "in" / f"{stems[bad]}.npy"

    def spoil(units):
        if damage == "truncate":
            path.write_bytes(path.read_bytes()[:-8])
        elif damage == "reshape":
            np.save(path, np.zeros(15, np.float32))
        else:
            path.unlink()

    out = tmp_path / "out"
    units, exc = stream_in_process(device, "tiny", [tmp_path / "in"], out, before_stream=spoil)
    assert isinstance(exc, batchfiles.InputFileError), exc
    assert str(path) in str(exc) and f"input file {bad}" in str(exc) and fragment in str(exc), str(exc)
    assert exc.figures["completed"] == list(range(bad))
    got = read_out(out, "y")
    assert sorted(got) == stems[:bad]
    exp = expected_outputs(device, "tiny", [x[:bad]])[0]
    for i, s in enumerate(stems[:bad]):
        same(got[s], exp[i], s)


def test_full_disk_names_the_file(tmp_path, device, monkeypatch):
    """ENOSPC from the writer's write: the file is named, the disk said to be full, no temporary
    file left, every file before it complete."""
    stems, x = one_sample_folder(tmp_path / "in", "tiny", 24)
    calls = {"n": 0}
    real = os.writev

    def writev(fd, parts):
        calls["n"] += 1
        if calls["n"] == 11:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, parts)

    monkeypatch.setattr(filestream.os, "writev", writev)
    out = tmp_path / "out"
    units, exc = stream_in_process(device, "tiny", [tmp_path / "in"], out)
    assert isinstance(exc, filestream.OutputFileError), exc
    assert f"{out / 'y' / stems[10]}.npy" in str(exc) and "disk is full" in str(exc)
    names = sorted(os.listdir(out / "y"))
    assert names == [f"{s}.npy" for s in stems[:10]]              # no .part, nothing after it
    exp = expected_outputs(device, "tiny", [x[:10]])[0]
    for i, s in enumerate(stems[:10]):
        same(np.load(out / "y" / f"{s}.npy"), exp[i], s)


def test_full_disk_through_the_command(tmp_path):
    """The command's one-line error for a full disk (the writer's writev failing with ENOSPC, in
    the child)."""
    save_npys(tmp_path / "in", [np.zeros(16, np.float32)] * 3, ["a", "b", "c"])
    out = tmp_path / "out"
    code = ("import errno, os, sys\n"
            "from fastexec import filestream\n"
            "def full(fd, parts): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
            "filestream.os.writev = full\n"
            "from fastexec.cli import main\n"
            f"sys.exit(main(['run', 'tiny', '-i', {str(tmp_path / 'in')!r}, '-o', {str(out)!r}, '--no-progress']))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_")}
    env.update({"FASTEXEC_BACKEND": "emulator", "FASTEXEC_EMU_FAST": "1"})
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    line = one_line_error(proc, "disk is full", str(out / "y" / "a.npy"))
    assert line.startswith("fastexec run: error: OutputFileError")
    assert os.listdir(out / "y") == []
    manifest = json.loads((out / "fastexec-run.json").read_text())
    assert manifest["complete"] is False and manifest["completed"] == [] and "disk is full" in manifest["stopped"]


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_stored_read_in_place_compressed_decoded(save, tmp_path, device):
    """An uncompressed .npz member is read like a .npy (its data offset planned from the zip's
    local header); a compressed one is decoded by numpy; both give Executor.run's outputs."""
    ins, outs, B = specs_of("multi-io")
    a, b = make_data(ins[0], 3 * B + 5, 7), make_data(ins[1], 3 * B + 5, 8)
    save(tmp_path / "pack.npz", a=a, b=b)
    with fastexec.Model(str(model_path("multi-io")), device=device) as m:
        unit, = batchfiles.plan(m.inputs, [str(tmp_path / "pack.npz")])
    assert (unit.offsets[0] is None) == (save is np.savez_compressed)
    out = tmp_path / "out"
    ok(run_cli("multi-io", [tmp_path / "pack.npz"], out))
    check_written(out, outs, ["pack"], expected_outputs(device, "multi-io", [a, b]), [3 * B + 5])


def test_resume_after_a_kill_redoes_unlisted_outputs_and_removes_temporary_files(tmp_path, device):
    """A run killed outright (no manifest update): --resume rewrites what the manifest does not
    list as complete, and removes the temporary file the killed writer left."""
    stems, x = one_sample_folder(tmp_path / "in", "tiny", 6)
    out = tmp_path / "out"
    ok(run_cli("tiny", [tmp_path / "in"], out))
    manifest = json.loads((out / "fastexec-run.json").read_text())
    manifest.update(complete=False, completed=stems[:2])          # as a kill after two files leaves it
    (out / "fastexec-run.json").write_text(json.dumps(manifest))
    (out / "y" / f"{stems[3]}.npy").write_bytes(b"not what the run writes")
    (out / "y" / f".{stems[4]}.npy.part").write_bytes(b"half")
    proc = ok(run_cli("tiny", [tmp_path / "in"], out, "--resume"))
    assert "2 skipped" in proc.stdout
    exp = expected_outputs(device, "tiny", [x])[0]
    assert sorted(os.listdir(out / "y")) == [f"{s}.npy" for s in stems]
    for i, s in enumerate(stems):
        same(np.load(out / "y" / f"{s}.npy"), exp[i], s)


def test_a_host_bound_run_says_so(tmp_path):
    """`tiny` over 200 one-sample files: the device is busy microseconds, the files milliseconds;
    the summary (printed and in the JSON) says the run was host-bound, with the busy times."""
    one_sample_folder(tmp_path / "in", "tiny", 200)
    proc = ok(run_cli("tiny", [tmp_path / "in"], tmp_path / "out", "--json", tmp_path / "r.json",
                      env_extra={"FASTEXEC_EMU_FAST": "0"}))
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["bound"]["efficiency"] < 0.85
    io = r["io"]
    assert max(io["reader_utilization"], io["writer_utilization"]) > io["device_utilization"]
    host = [w for w in r["warnings"] if w.startswith("host-bound")]
    assert len(host) == 1 and f"device {io['device_busy_s']:.3f} s" in host[0], r["warnings"]
    assert f"warning: {host[0]}" in proc.stdout
