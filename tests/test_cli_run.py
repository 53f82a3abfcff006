"""fastexec info, inspect and run: the commands as a user runs them (subprocesses with a clean
environment), their outputs checked against the executor run in this process on the same data."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastexec
from fastexec import emulator
from fastexec.emulator.model_file import ModelDef, TensorDef, write_model

SAMPLE_NAMES = ["resnet50-int8", "balanced", "tiny", "dynamic-batch", "multi-io"]


# ---------------------------------------------------------------- helpers


def cli(*args, env_extra=None, timeout=120):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_")}
    env.update({"FASTEXEC_BACKEND": "emulator", "FASTEXEC_EMU_FAST": "1"})
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "fastexec.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout)


def run_cli(model, inputs, out, *flags, **kw):
    return cli("run", model, "--input", *inputs, "--output", out, "--no-progress", *flags, **kw)


def ok(proc):
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def model_path(name):
    return emulator.sample_model(name)


def specs_of(name):
    with fastexec.Model(model_path(name)) as m:
        return list(m.inputs), list(m.outputs), m.batch_size


def make_data(spec, n, seed, single=False):
    """n samples of `spec`'s sample shape and dtype (one sample without batch axis if single)."""
    rng = np.random.default_rng(seed)
    shape = ((n,) if not single else ()) + tuple(spec.shape[1:])
    dt = np.dtype(spec.dtype)
    if dt.kind == "u":
        return rng.integers(0, 256, shape).astype(dt)
    if dt.kind == "i":
        return rng.integers(-1000, 1000, shape).astype(dt)
    return rng.uniform(-8, 8, shape).astype(dt)


def expected_outputs(device, name_or_path, inputs):
    """Executor.run on whole arrays (one per model input, samples along axis 0)."""
    path = name_or_path if os.path.exists(str(name_or_path)) else model_path(name_or_path)
    with fastexec.Model(str(path), device=device) as model, fastexec.Executor(model) as ex:
        return [np.array(o, copy=True) for o in ex.run([np.ascontiguousarray(a) for a in inputs])]


def same(a, b, what=""):
    assert a.dtype == b.dtype, (what, a.dtype, b.dtype)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    assert a.tobytes() == b.tobytes(), f"{what}: values differ"


def all_files(root):
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def read_out(out, output_name):
    d = Path(out) / output_name
    names = sorted(os.listdir(d))
    assert all(n.endswith(".npy") for n in names), names          # no .part, no probe files
    return {n[:-4]: np.load(d / n, allow_pickle=False) for n in names}


def check_written(out, out_specs, stems, expected, rows, singles=None):
    """OUT/<output>/<stem>.npy for each stem (and nothing else); each equal, bit for bit, to its rows of
    `expected` (one array per output, in stem order); single units without the batch axis."""
    singles = singles or [False] * len(stems)
    assert sorted(os.listdir(out)) == sorted([s.name for s in out_specs] + ["fastexec-run.json"])
    manifest = json.loads((Path(out) / "fastexec-run.json").read_text())
    assert manifest["complete"] is True
    assert sorted(manifest["files"]) == sorted(f"{s.name}/{stem}.npy" for s in out_specs for stem in stems)
    for spec, exp in zip(out_specs, expected):
        got = read_out(out, spec.name)
        assert sorted(got) == sorted(stems)
        start = 0
        for stem, n, single in zip(stems, rows, singles):
            want = exp[start:start + n]
            same(got[stem], want[0] if single else want, f"{spec.name}/{stem}")
            start += n
        assert start == len(exp)


def interrupt_when(proc, ready, waiting_for, sig=signal.SIGINT):
    """Send `sig` (SIGINT) to the running `proc` once ready() holds (polled for 30 s at most);
    its (stdout, stderr). The process is killed if anything fails on the way."""
    try:
        deadline = time.monotonic() + 30
        while not ready():
            assert proc.poll() is None, ("finished before it could be interrupted", proc.communicate())
            assert time.monotonic() < deadline, f"no {waiting_for} appeared"
            time.sleep(0.01)
        proc.send_signal(sig)
        return proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def save_npys(folder, arrays, names):
    folder.mkdir(parents=True, exist_ok=True)
    for a, n in zip(arrays, names):
        np.save(folder / f"{n}.npy", a)
    return folder


# ---------------------------------------------------------------- info, inspect


def test_info_fields():
    proc = ok(cli("info"))
    fields = {}
    for line in proc.stdout.splitlines():
        if line and not line.startswith(" "):
            key, _, value = line.partition(" ")
            fields[key] = value.strip()
    assert fields["backend"].startswith("emulator") and "bundled emulator" in fields["backend"]
    bi = fastexec.backend_info()
    assert fields["library"] == bi["library"] and Path(fields["library"]).is_file()
    assert fields["SoC"] == "Ascend310P3"
    assert "emulator" in fields and "profile atlas-300i-pro" in fields["emulator"] and "fast mode" in fields["emulator"]
    assert fields["devices"] == "1"
    with fastexec.Device(0) as dev:
        free_b, total = dev.memory_info()
    assert f"  device 0: {total / 2**30:.1f} GiB memory, {free_b / 2**30:.1f} GiB free" in proc.stdout.splitlines()
    assert total > 0


def test_info_lists_every_device_with_memory():
    proc = ok(cli("info", env_extra={"FASTEXEC_EMU_DEVICES": "3"}))
    assert re.search(r"^devices\s+3$", proc.stdout, re.M)
    for d in range(3):
        assert re.search(rf"^  device {d}: \d+\.\d GiB memory, \d+\.\d GiB free$", proc.stdout, re.M), proc.stdout


def test_info_shows_only_the_visible_devices():
    proc = ok(cli("info", env_extra={"FASTEXEC_EMU_DEVICES": "4", "ASCEND_RT_VISIBLE_DEVICES": "1,3"}))
    assert re.search(r"^devices\s+2$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^  device 1: ", proc.stdout, re.M) and not re.search(r"^  device 2: ", proc.stdout, re.M)


ROW = re.compile(r"^(input|output)\s+(\S+)\s+(\S+)\s+(\([^)]*\))\s+(\([^)]*\)|\?)\s+(\S+)\s+(\d+)$")


def range_text(spec):
    if spec.shape_range is None:
        return "?"
    return "(" + ", ".join(str(lo) if lo == hi else f"{lo}..{hi}" for lo, hi in spec.shape_range) + ")"


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_inspect_table(name):
    proc = ok(cli("inspect", name))
    ins, outs, batch = specs_of(name)
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["model", str(Path(model_path(name)).resolve())]
    rows = [ROW.match(l).groups() for l in lines if ROW.match(l)]
    want = [(kind, s.name, str(s.dtype), "(" + ", ".join(map(str, s.shape)) + ")", range_text(s), s.format, str(s.nbytes))
            for kind, specs in (("input", ins), ("output", outs)) for s in specs]
    assert rows == want
    assert lines[2].split() == ["name", "dtype", "shape", "range", "format", "bytes"]
    assert len(lines) == 3 + len(want)
    batch_line = lines[1]
    assert batch_line.split()[:2] == ["batch", str(batch)]
    if name == "dynamic-batch":
        assert "dynamic batch gears: 1, 2, 4, 8" in batch_line
    else:
        assert "gears" not in batch_line


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_inspect_json(name, tmp_path):
    # by path as well as by sample name
    arg = name if name != "multi-io" else model_path(name)
    proc = ok(cli("inspect", arg, "--json"))
    d = json.loads(proc.stdout)
    with fastexec.Model(model_path(name)) as m:
        want = {
            "model": os.path.abspath(model_path(name)), "batch_size": m.batch_size,
            "dynamic_kind": m.dynamic_kind, "dynamic_batch": list(m.dynamic_batch), "dynamic_hw": [], "dynamic_dims": [],
            "inputs": [{"name": s.name, "shape": list(s.shape), "dtype": str(s.dtype), "format": s.format,
                        "bytes": s.nbytes, "range": [list(r) for r in s.shape_range]} for s in m.inputs],
            "outputs": [{"name": s.name, "shape": list(s.shape), "dtype": str(s.dtype), "format": s.format,
                         "bytes": s.nbytes, "range": None if s.shape_range is None else [list(r) for r in s.shape_range]}
                        for s in m.outputs],
            "aipp": {},
        }
    assert d == want
    assert d["dynamic_batch"] == ([1, 2, 4, 8] if name == "dynamic-batch" else [])


def test_inspect_shows_gears_and_ranges():
    lines = ok(cli("inspect", "dynamic-hw")).stdout.splitlines()
    assert "dynamic height/width gears: 16x16, 32x32, 48x64" in lines
    assert any(ROW.match(l) and ROW.match(l).group(5) == "(2, 3, 16..48, 16..64)" for l in lines)
    lines = ok(cli("inspect", "dynamic-dims")).stdout.splitlines()
    assert "dynamic dims gear 1: ids (2, 32) mask (2, 4)" in lines
    d = json.loads(ok(cli("inspect", "dynamic-shape", "--json")).stdout)
    assert d["dynamic_kind"] == "dynamic_shape" and d["inputs"][0]["range"] == [[1, 8], [1, 128]]
    assert d["outputs"][0]["range"] is None


def test_inspect_missing_model(tmp_path):
    one_line_error(cli("inspect", tmp_path / "nope.om"), "nope.om", "no model file")


# ---------------------------------------------------------------- run: layouts


@pytest.mark.parametrize("name,n", [("resnet50-int8", 11), ("dynamic-batch", 13), ("tiny", 5)])
def test_single_npy_many_samples_tail_padded(name, n, tmp_path, device):
    ins, outs, _ = specs_of(name)
    x = make_data(ins[0], n, 1)
    np.save(tmp_path / "batch.npy", x)
    out = tmp_path / "out"
    proc = ok(run_cli(name, [tmp_path / "batch.npy"], out))
    check_written(out, outs, ["batch"], expected_outputs(device, name, [x]), [n])
    assert re.search(rf"processed\s+1 input file\(s\), {n} samples", proc.stdout)
    assert "wrote       1 file(s)" in proc.stdout


def test_single_npy_files_multi_io_tail_padded(tmp_path, device):
    ins, outs, _ = specs_of("multi-io")
    a, b = make_data(ins[0], 7, 1), make_data(ins[1], 7, 2)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    out = tmp_path / "out"
    ok(run_cli("multi-io", [tmp_path / "a.npy", tmp_path / "b.npy"], out))
    check_written(out, outs, ["a"], expected_outputs(device, "multi-io", [a, b]), [7])


@pytest.mark.parametrize("name", ["tiny", "resnet50-int8", "dynamic-batch"])
def test_single_sample_npy_written_without_batch_axis(name, tmp_path, device):
    ins, outs, _ = specs_of(name)
    x = make_data(ins[0], 1, 3, single=True)
    assert x.shape == tuple(ins[0].shape[1:])
    np.save(tmp_path / "one.npy", x)
    out = tmp_path / "out"
    ok(run_cli(name, [tmp_path / "one.npy"], out))
    exp = expected_outputs(device, name, [x[None]])
    check_written(out, outs, ["one"], exp, [1], singles=[True])
    assert np.load(out / outs[0].name / "one.npy").shape == tuple(outs[0].shape[1:])


def test_folder_of_per_sample_npy(tmp_path, device):
    ins, outs, _ = specs_of("dynamic-batch")
    stems = [f"img_{i:03d}" for i in range(11)]
    xs = [make_data(ins[0], 1, 10 + i, single=True) for i in range(11)]
    save_npys(tmp_path / "in", xs, stems)
    out = tmp_path / "out"
    ok(run_cli("dynamic-batch", [tmp_path / "in"], out))
    exp = expected_outputs(device, "dynamic-batch", [np.stack(xs)])
    check_written(out, outs, stems, exp, [1] * 11, singles=[True] * 11)


def test_folder_of_per_batch_npy_varying_rows(tmp_path, device):
    ins, outs, _ = specs_of("resnet50-int8")
    rows = [3, 1, 8, 12, 2]          # batches straddle the model's 8; (1, ...) keeps its batch axis
    stems = ["p0", "p1", "p2", "p3", "p4"]
    xs = [make_data(ins[0], r, 20 + i) for i, r in enumerate(rows)]
    save_npys(tmp_path / "in", xs, stems)
    out = tmp_path / "out"
    ok(run_cli("resnet50-int8", [tmp_path / "in"], out))
    exp = expected_outputs(device, "resnet50-int8", [np.concatenate(xs)])
    check_written(out, outs, stems, exp, rows)
    assert np.load(out / "logits" / "p1.npy").shape == (1, 1000)


def test_folder_of_per_sample_bin(tmp_path, device):
    ins, outs, _ = specs_of("tiny")
    (tmp_path / "in").mkdir()
    xs = [make_data(ins[0], 1, 30 + i, single=True) for i in range(6)]
    stems = [f"s{i}" for i in range(6)]
    for s, x in zip(stems, xs):
        x.tofile(tmp_path / "in" / f"{s}.bin")
    out = tmp_path / "out"
    ok(run_cli("tiny", [tmp_path / "in"], out))
    check_written(out, outs, stems, expected_outputs(device, "tiny", [np.stack(xs)]), [1] * 6, singles=[True] * 6)


def test_folders_of_multi_sample_bin_multi_io(tmp_path, device):
    ins, outs, _ = specs_of("multi-io")
    rows = [3, 2, 5, 1]
    stems = [f"chunk{i}" for i in range(4)]
    a_parts = [make_data(ins[0], r, 40 + i) for i, r in enumerate(rows)]
    b_parts = [make_data(ins[1], r, 50 + i) for i, r in enumerate(rows)]
    for d, parts in (("A", a_parts), ("B", b_parts)):
        (tmp_path / d).mkdir()
        for s, p in zip(stems, parts):
            p.tofile(tmp_path / d / f"{s}.bin")
    out = tmp_path / "out"
    ok(run_cli("multi-io", [tmp_path / "A", tmp_path / "B"], out))
    exp = expected_outputs(device, "multi-io", [np.concatenate(a_parts), np.concatenate(b_parts)])
    # a .bin has no shape: in a folder whose files hold several samples, every output keeps its
    # batch axis, even the one-sample file's (shapes stay uniform within an output folder)
    check_written(out, outs, stems, exp, rows, singles=[False] * len(rows))


def test_folder_of_bin_dynamic_batch(tmp_path, device):
    """A dynamic-batch input's spec has shape (-1, ...): a sample is 3*16*16 float32 = 3072 bytes."""
    ins, outs, _ = specs_of("dynamic-batch")
    rows = [1, 3, 1, 6]
    stems = [f"f{i}" for i in range(4)]
    parts = [make_data(ins[0], r, 60 + i) for i, r in enumerate(rows)]
    (tmp_path / "in").mkdir()
    for s, p in zip(stems, parts):
        p.tofile(tmp_path / "in" / f"{s}.bin")
    out = tmp_path / "out"
    ok(run_cli("dynamic-batch", [tmp_path / "in"], out))
    exp = expected_outputs(device, "dynamic-batch", [np.concatenate(parts)])
    check_written(out, outs, stems, exp, rows, singles=[False] * len(rows))


@pytest.mark.parametrize("by", ["name", "position", "name-single-sample"])
def test_npz_multi_io(by, tmp_path, device):
    ins, outs, _ = specs_of("multi-io")
    single = by == "name-single-sample"
    n = 1 if single else 9
    a, b = make_data(ins[0], n, 70, single), make_data(ins[1], n, 71, single)
    path = tmp_path / "pack.npz"
    if by == "position":
        np.savez(path, a, b)              # arr_0, arr_1
    else:
        np.savez(path, b=b, a=a)          # stored in the other order: matched by name
    out = tmp_path / "out"
    ok(run_cli("multi-io", [path], out))
    exp = expected_outputs(device, "multi-io", [a[None], b[None]] if single else [a, b])
    check_written(out, outs, ["pack"], exp, [n], singles=[single])


def _multi_io_folders(tmp_path, rows):
    ins, outs, _ = specs_of("multi-io")
    stems = [f"rec{i:02d}" for i in range(len(rows))]
    a_parts = [make_data(ins[0], r, 80 + i) for i, r in enumerate(rows)]
    b_parts = [make_data(ins[1], r, 90 + i) for i, r in enumerate(rows)]
    save_npys(tmp_path / "A", a_parts, stems)
    save_npys(tmp_path / "B", b_parts, stems)
    return outs, stems, a_parts, b_parts


@pytest.mark.parametrize("how", ["position", "name"])
def test_two_folders_multi_io(how, tmp_path, device):
    rows = [2, 3, 1, 4, 5]
    outs, stems, a_parts, b_parts = _multi_io_folders(tmp_path, rows)
    if how == "position":
        srcs = [tmp_path / "A", tmp_path / "B"]
    else:                                           # the other order: only the names say which is which
        srcs = [f"b={tmp_path / 'B'}", f"a={tmp_path / 'A'}"]
    out = tmp_path / "out"
    ok(run_cli("multi-io", srcs, out))
    exp = expected_outputs(device, "multi-io", [np.concatenate(a_parts), np.concatenate(b_parts)])
    check_written(out, outs, stems, exp, rows)


def test_limit_processes_only_the_first_files(tmp_path, device):
    ins, outs, _ = specs_of("tiny")
    names = ["k", "b", "z", "a", "m", "c", "q"]       # written out of order: sorted order decides
    xs = {n: make_data(ins[0], 1, ord(n), single=True) for n in names}
    save_npys(tmp_path / "in", list(xs.values()), list(xs))
    out = tmp_path / "out"
    proc = ok(run_cli("tiny", [tmp_path / "in"], out, "--limit", "3"))
    first = sorted(names)[:3]
    exp = expected_outputs(device, "tiny", [np.stack([xs[n] for n in first])])
    check_written(out, outs, first, exp, [1, 1, 1], singles=[True] * 3)
    assert "processed   3 input file(s), 3 samples" in proc.stdout
    assert "wrote       3 file(s)" in proc.stdout


def test_limit_multi_io_folders(tmp_path, device):
    rows = [2, 3, 1, 4, 5]
    outs, stems, a_parts, b_parts = _multi_io_folders(tmp_path, rows)
    out = tmp_path / "out"
    ok(run_cli("multi-io", [tmp_path / "A", tmp_path / "B"], out, "--limit", "2"))
    exp = expected_outputs(device, "multi-io", [np.concatenate(a_parts[:2]), np.concatenate(b_parts[:2])])
    check_written(out, outs, stems[:2], exp, rows[:2])


@pytest.mark.parametrize("flags", [
    ["--depth", "1"],
    ["--depth", "7", "--instances", "3"],
    ["--mode", "serial"],
    ["--mode", "serial", "--depth", "1", "--instances", "2"],
])
def test_pipeline_settings_give_the_same_outputs(flags, tmp_path, device):
    rows = [2, 3, 1, 4, 5, 1, 2]
    outs, stems, a_parts, b_parts = _multi_io_folders(tmp_path, rows)
    out = tmp_path / "out"
    ok(run_cli("multi-io", [tmp_path / "A", tmp_path / "B"], out, *flags))
    exp = expected_outputs(device, "multi-io", [np.concatenate(a_parts), np.concatenate(b_parts)])
    check_written(out, outs, stems, exp, rows)


@pytest.mark.parametrize("flags", [["--device", "0,1,2"], ["--device", "3,1", "--instances", "2", "--mode", "serial"]])
def test_several_devices_give_the_same_outputs(flags, tmp_path, device):
    rows = [2, 3, 1, 4, 5, 1, 2, 2, 1]
    outs, stems, a_parts, b_parts = _multi_io_folders(tmp_path, rows)
    out = tmp_path / "out"
    ok(run_cli("multi-io", [tmp_path / "A", tmp_path / "B"], out, *flags, env_extra={"FASTEXEC_EMU_DEVICES": "4"}))
    exp = expected_outputs(device, "multi-io", [np.concatenate(a_parts), np.concatenate(b_parts)])
    check_written(out, outs, stems, exp, rows)
    manifest = json.loads((out / "fastexec-run.json").read_text())
    devices = [int(d) for d in flags[1].split(",")]
    assert manifest["options"]["devices"] == devices and manifest["options"]["device"] == devices[0]


def test_output_names_follow_input_names(tmp_path, device):
    ins, outs, _ = specs_of("multi-io")
    stems = ["img_10", "img_2", "Zeta", "alpha", "v1.2.final", "0001", "b b"]
    a = [make_data(ins[0], 1, 100 + i, single=True) for i in range(len(stems))]
    b = [make_data(ins[1], 1, 200 + i, single=True) for i in range(len(stems))]
    save_npys(tmp_path / "A", a, stems)
    save_npys(tmp_path / "B", b, stems)
    out = tmp_path / "out"
    proc = ok(run_cli("multi-io", [tmp_path / "A", tmp_path / "B"], out))
    in_stems = sorted(n[:-4] for n in os.listdir(tmp_path / "A"))
    for o in ("a_out", "b_out"):
        names = sorted(os.listdir(out / o))
        assert [n[:-4] for n in names] == in_stems
        assert all(n.endswith(".npy") for n in names)
    order = sorted(range(len(stems)), key=lambda i: stems[i] + ".npy")
    exp = expected_outputs(device, "multi-io", [np.stack([a[i] for i in order]), np.stack([b[i] for i in order])])
    check_written(out, outs, [stems[i] for i in order], exp, [1] * len(stems), singles=[True] * len(stems))
    # the summary
    assert re.search(r"^throughput\s+[\d.]+ samples/s, [\d.]+ files/s", proc.stdout, re.M), proc.stdout
    assert f"processed   {len(stems)} input file(s), {len(stems)} samples, 4 batches" in proc.stdout
    assert f"wrote       {2 * len(stems)} file(s) under {out.resolve()}" in proc.stdout


def test_output_names_made_safe_stay_inside_the_output_folder(tmp_path, device):
    """Output names that are not file names ('x:0', 'x/0', '..') get distinct folders, all inside OUT."""
    path = write_model(tmp_path / "names.om", ModelDef(
        name="names", inputs=tuple(TensorDef(n, "float32", "ND", (2, 4)) for n in ("i0", "i1", "i2")),
        outputs=tuple(TensorDef(n, "float32", "ND", (2, 4)) for n in ("scores:0", "scores/0", "..")),
        kernel="identity", compute_us=1.0))
    xs = [np.full((3, 4), i, np.float32) + np.arange(12, dtype=np.float32).reshape(3, 4) / 8 for i in range(3)]
    (tmp_path / "work").mkdir()
    for i, x in enumerate(xs):
        np.save(tmp_path / "work" / f"in{i}.npy", x)
    out = tmp_path / "work" / "out"
    before = all_files(tmp_path)
    ok(run_cli(path, [tmp_path / "work" / f"in{i}.npy" for i in range(3)], out))
    for i, x in enumerate(xs):                                      # OUT/../in0.npy is the input itself
        same(np.load(tmp_path / "work" / f"in{i}.npy"), x, f"input in{i}.npy after the run")
    new = sorted(set(all_files(tmp_path)) - set(before) - {tmp_path / "work" / "out" / "fastexec-run.json"})
    assert all(out in p.parents for p in new), new                 # nothing written outside OUT
    assert len(new) == 3 and len({p.parent for p in new}) == 3, new
    assert all(p.parent.parent == out and p.parent.name not in (".", "..") and p.name == "in0.npy" for p in new)
    assert (out / "scores_0" / "in0.npy").is_file()
    exp = expected_outputs(device, path, xs)
    got = {p.parent.name: np.load(p) for p in new}
    assert sorted(a.tobytes() for a in got.values()) == sorted(e.tobytes() for e in exp)
    same(got["scores_0"], exp[0])


def test_existing_empty_output_folder_is_used_a_non_empty_one_refused(tmp_path, device):
    ins, outs, _ = specs_of("tiny")
    x = make_data(ins[0], 4, 5)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    out.mkdir()
    ok(run_cli("tiny", [tmp_path / "x.npy"], out))
    check_written(out, outs, ["x"], expected_outputs(device, "tiny", [x]), [4])
    other = tmp_path / "other"
    (other / "y").mkdir(parents=True)
    (other / "y" / "x.npy").write_bytes(b"stale")
    before = all_files(tmp_path)
    line = one_line_error(run_cli("tiny", [tmp_path / "x.npy"], other), "not empty", "--force")
    assert all_files(tmp_path) == before and line.startswith("fastexec run: error: ")


def test_progress_bar_on_a_terminal(tmp_path):
    """With stderr on a terminal, a progress bar counts samples; --no-progress turns it off."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    ins, _, _ = specs_of("tiny")
    save_npys(tmp_path / "in", [make_data(ins[0], 1, i, single=True) for i in range(50)], [f"s{i:02d}" for i in range(50)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_")}
    env.update({"FASTEXEC_BACKEND": "emulator", "FASTEXEC_EMU_FAST": "1"})

    def on_terminal(*flags):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))   # a sized terminal
        proc = subprocess.Popen([sys.executable, "-m", "fastexec.cli", "run", "tiny", "--input", str(tmp_path / "in"),
                                 "--output", str(tmp_path / "out"), "--force", *flags],
                                stdout=subprocess.PIPE, stderr=slave, text=True, env=env)
        os.close(slave)
        seen = b""
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                r, _, _ = select.select([master], [], [], 1)
                if r:
                    try:
                        chunk = os.read(master, 4096)
                    except OSError:            # EIO: the child closed the terminal
                        break
                    if not chunk:
                        break
                    seen += chunk
                elif proc.poll() is not None:
                    break
            stdout = proc.communicate(timeout=30)[0]
        finally:
            os.close(master)
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, (stdout, seen)
        return stdout, seen.decode(errors="replace")

    stdout, bar = on_terminal()
    assert "samples" in bar and "/50" in bar, bar
    assert "throughput" in stdout and "samples/s" in stdout          # the summary on stdout
    _, quiet = on_terminal("--no-progress")
    assert "/50" not in quiet and quiet.strip() == "", quiet


# ---------------------------------------------------------------- run: errors


def one_line_error(proc, *fragments, code=1):
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = [l for l in proc.stderr.splitlines() if not l.startswith("fastexec: WARNING")]
    assert len(lines) == 1, proc.stderr
    for f in fragments:
        assert str(f) in lines[0], (f, lines[0])
    return lines[0]


def usage_error(proc, *fragments):
    """argparse's convention: exit 2, the usage line, then 'fastexec run: error: message'."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr.startswith("usage: fastexec run"), proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("fastexec run: error: "), proc.stderr
    for f in fragments:
        assert str(f) in last, (f, last)


def failed_run(tmp_path, model, inputs, *fragments, out=None, flags=()):
    """The run fails with one line naming `fragments`, and writes nothing at all."""
    before = all_files(tmp_path)
    out = out if out is not None else tmp_path / "out"
    line = one_line_error(run_cli(model, inputs, out, *flags), *fragments)
    assert line.startswith("fastexec run: error: ")
    assert all_files(tmp_path) == before
    return line


def test_error_missing_input(tmp_path):
    failed_run(tmp_path, "tiny", [tmp_path / "nope.npy"], tmp_path / "nope.npy", "no such file")
    assert not (tmp_path / "out").exists()


def test_error_missing_model(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(16, np.float32))
    failed_run(tmp_path, tmp_path / "nope.om", [tmp_path / "x.npy"], "nope.om", "no model file")
    assert not (tmp_path / "out").exists()


def test_error_wrong_dtype(tmp_path):
    save_npys(tmp_path / "in", [np.zeros(16, np.float32), np.zeros(16, np.float64)], ["a", "b"])
    failed_run(tmp_path, "tiny", [tmp_path / "in"], tmp_path / "in" / "b.npy", "dtype float32", "float64")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("shape", [(15,), (3, 15), (2, 1, 16), (0, 16)])
def test_error_wrong_sample_shape(shape, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(shape, np.float32))
    failed_run(tmp_path, "tiny", [tmp_path / "x.npy"], tmp_path / "x.npy", "shape (16)", str(shape))


def test_error_wrong_sample_shape_image(tmp_path):
    np.save(tmp_path / "img.npy", np.zeros((2, 224, 224, 3), np.uint8))      # NHWC for an NCHW model
    failed_run(tmp_path, "resnet50-int8", [tmp_path / "img.npy"], "img.npy", "(3, 224, 224)", "(2, 224, 224, 3)")


def test_error_bin_not_whole_samples(tmp_path):
    (tmp_path / "in").mkdir()
    np.zeros(16, np.float32).tofile(tmp_path / "in" / "a.bin")
    (tmp_path / "in" / "b.bin").write_bytes(b"\0" * 100)
    failed_run(tmp_path, "tiny", [tmp_path / "in"], tmp_path / "in" / "b.bin", "100 bytes", "not a whole number")


def test_error_empty_bin(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.bin").write_bytes(b"")
    failed_run(tmp_path, "tiny", [tmp_path / "in"], tmp_path / "in" / "a.bin", "0 bytes")


def test_error_folder_mixing_npy_and_bin(tmp_path):
    save_npys(tmp_path / "in", [np.zeros(16, np.float32)], ["a"])
    np.zeros(16, np.float32).tofile(tmp_path / "in" / "b.bin")
    failed_run(tmp_path, "tiny", [tmp_path / "in"], tmp_path / "in", "mixes .npy and .bin")


def test_error_empty_folder(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("not an input")
    failed_run(tmp_path, "tiny", [tmp_path / "in"], tmp_path / "in", "no .npy or .bin files")


def test_error_folders_with_different_file_counts(tmp_path):
    _multi_io_folders(tmp_path, [1, 2, 3])
    os.unlink(tmp_path / "B" / "rec01.npy")
    failed_run(tmp_path, "multi-io", [tmp_path / "A", tmp_path / "B"], "input 'b' has 2 file(s)", "input 'a' has 3")


def test_error_paired_files_with_different_sample_counts(tmp_path):
    ins, _, _ = specs_of("multi-io")
    _multi_io_folders(tmp_path, [1, 2, 3])
    np.save(tmp_path / "B" / "rec01.npy", make_data(ins[1], 5, 0))
    failed_run(tmp_path, "multi-io", [tmp_path / "A", tmp_path / "B"], tmp_path / "B" / "rec01.npy", "5 sample(s)",
               tmp_path / "A" / "rec01.npy", "2")


def test_error_npz_inputs_with_different_sample_counts(tmp_path):
    ins, _, _ = specs_of("multi-io")
    np.savez(tmp_path / "p.npz", a=make_data(ins[0], 3, 0), b=make_data(ins[1], 4, 0))
    failed_run(tmp_path, "multi-io", [tmp_path / "p.npz"], "p.npz", "different numbers of samples")


@pytest.mark.parametrize("model,n", [("multi-io", 1), ("multi-io", 3), ("tiny", 2)])
def test_error_wrong_number_of_sources(model, n, tmp_path):
    ins, _, _ = specs_of(model)
    for i in range(n):
        np.save(tmp_path / f"s{i}.npy", make_data(ins[0], 2, i))
    failed_run(tmp_path, model, [tmp_path / f"s{i}.npy" for i in range(n)],
               f"has {len(ins)} input(s)", f"got {n} source(s)")


def test_error_unknown_input_name_with_positional(tmp_path):
    _multi_io_folders(tmp_path, [1, 2])
    line = failed_run(tmp_path, "multi-io", [tmp_path / "A", f"zz={tmp_path / 'B'}"], "zz")
    assert "zz=" in line or "'zz'" in line


def test_error_unknown_input_name_with_names(tmp_path):
    """Every source given by name, one of them not an input of the model: the message says which."""
    _multi_io_folders(tmp_path, [1, 2])
    failed_run(tmp_path, "multi-io", [f"a={tmp_path / 'A'}", f"zz={tmp_path / 'B'}"], "'zz'", "a, b")


def test_error_input_named_twice(tmp_path):
    _multi_io_folders(tmp_path, [1, 2])
    failed_run(tmp_path, "multi-io", [f"a={tmp_path / 'A'}", f"a={tmp_path / 'B'}"], "input 'a' is given twice")


@pytest.mark.parametrize("keys", [["a"], ["a", "c"], []])
def test_error_npz_missing_an_input(keys, tmp_path):
    ins, _, _ = specs_of("multi-io")
    np.savez(tmp_path / "p.npz", **{k: make_data(ins[0], 2, 0) for k in keys})
    failed_run(tmp_path, "multi-io", [tmp_path / "p.npz"], "p.npz", "expected the model's inputs a, b")


def test_error_output_inside_a_regular_file(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(16, np.float32))
    (tmp_path / "taken").write_text("a file")
    failed_run(tmp_path, "tiny", [tmp_path / "x.npy"], tmp_path / "taken", "cannot write outputs",
               out=tmp_path / "taken")
    failed_run(tmp_path, "tiny", [tmp_path / "x.npy"], tmp_path / "taken", "cannot write outputs",
               out=tmp_path / "taken" / "sub" / "dir")
    assert (tmp_path / "taken").read_text() == "a file"


def test_error_output_folder_of_an_output_is_a_file(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(16, np.float32))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "y").write_text("in the way")
    failed_run(tmp_path, "tiny", [tmp_path / "x.npy"], tmp_path / "out", "not empty", "--force")


def test_error_corrupt_npy(tmp_path):
    save_npys(tmp_path / "in", [np.zeros(16, np.float32)], ["a"])
    (tmp_path / "in" / "b.npy").write_bytes(b"\x93NUMPY garbage, not a header")
    failed_run(tmp_path, "tiny", [tmp_path / "in"], tmp_path / "in" / "b.npy", "cannot read as .npy")


def test_error_truncated_npy(tmp_path):
    np.save(tmp_path / "t.npy", np.zeros((64, 16), np.float32))
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:len(data) // 2])
    failed_run(tmp_path, "tiny", [tmp_path / "t.npy"], tmp_path / "t.npy", "cannot read")


def test_error_file_of_unknown_kind(tmp_path):
    """A source file that is neither .npy, .npz nor a folder is not raw data: 128 bytes of text are
    not two float32 samples."""
    (tmp_path / "data.txt").write_bytes(b"x" * 128)
    failed_run(tmp_path, "tiny", [tmp_path / "data.txt"], tmp_path / "data.txt", ".npy")


def test_npz_given_for_one_input_is_read_as_npz(tmp_path, device):
    """`x=pack.npz`: the archive is read as an .npz (its 'x'), or refused with a clear message; never
    its zip bytes taken as samples."""
    x = make_data(specs_of("tiny")[0][0], 3, 5)
    np.savez(tmp_path / "pack.npz", x=x)
    out = tmp_path / "out"
    proc = run_cli("tiny", [f"x={tmp_path / 'pack.npz'}"], out)
    if proc.returncode == 0:
        check_written(out, specs_of("tiny")[1], ["pack"], expected_outputs(device, "tiny", [x]), [3])
    else:
        one_line_error(proc, "pack.npz", ".npz")
        assert not out.exists()


def test_error_npz_that_is_a_folder(tmp_path):
    (tmp_path / "p.npz").mkdir()
    failed_run(tmp_path, "multi-io", [tmp_path / "p.npz"], tmp_path / "p.npz", "cannot read as .npz")


def test_error_corrupt_npz(tmp_path):
    (tmp_path / "p.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    failed_run(tmp_path, "multi-io", [tmp_path / "p.npz"], tmp_path / "p.npz", "cannot read as .npz")


@pytest.mark.parametrize("flags,fragment", [
    (["--limit", "0"], "--limit"),
    (["--depth", "0"], "--depth"),
    (["--instances", "x"], "--instances"),
    (["--mode", "sideways"], "--mode"),
])
def test_impossible_flags(flags, fragment, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(16, np.float32))
    before = all_files(tmp_path)
    usage_error(run_cli("tiny", [tmp_path / "x.npy"], tmp_path / "out", *flags), fragment)
    assert all_files(tmp_path) == before


def test_run_without_output_is_a_flag_error(tmp_path):
    usage_error(cli("run", "tiny", "--input", tmp_path), "--output")


# ---------------------------------------------------------------- interrupt, many files


def test_interrupt_leaves_only_complete_outputs(tmp_path):
    slow = write_model(tmp_path / "slow.om", ModelDef(
        name="slow", inputs=(TensorDef("x", "float32", "ND", (1, 16)),),
        outputs=(TensorDef("y", "float32", "ND", (1, 16)),), kernel="identity", compute_us=20000.0))
    n = 300                                               # 300 batches x 20 ms: about 6 s uninterrupted
    xs = {f"s{i:04d}": np.full(16, i, np.float32) + np.arange(16, dtype=np.float32) / 16 for i in range(n)}
    save_npys(tmp_path / "in", list(xs.values()), list(xs))
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_")}
    env.update({"FASTEXEC_BACKEND": "emulator", "FASTEXEC_EMU_FAST": "0"})
    proc = subprocess.Popen([sys.executable, "-m", "fastexec.cli", "run", str(slow), "--input", str(tmp_path / "in"),
                             "--output", str(out), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    # progress: a few outputs written
    stdout, stderr = interrupt_when(proc, lambda: (out / "y").is_dir() and len(list((out / "y").glob("*.npy"))) >= 5,
                                    "outputs")
    assert proc.returncode == 130, (proc.returncode, stdout, stderr)
    assert "interrupted" in stderr
    files = [p for p in all_files(out) if p.name != "fastexec-run.json"]
    manifest = json.loads((out / "fastexec-run.json").read_text())
    assert manifest["complete"] is False                        # written before the run, listing its plan
    assert sorted(out / f for f in manifest["files"]) == sorted(out / "y" / f"{s}.npy" for s in xs)
    names = [p.name for p in files]
    assert not [x for x in names if x.endswith(".part")], names
    assert all(p.parent == out / "y" and p.suffix == ".npy" for p in files), files
    assert 5 <= len(files) < n, len(files)                     # interrupted part-way
    for p in files:
        same(np.load(p, allow_pickle=False), xs[p.stem], p.name)
    # ordered writes: the outputs are the first k inputs
    assert sorted(p.stem for p in files) == sorted(xs)[:len(files)]


def test_two_thousand_files(tmp_path, capsys):
    n = 2000
    rng = np.random.default_rng(2000)
    data = rng.standard_normal((n, 16)).astype(np.float32)
    stems = [f"sample_{i:05d}" for i in range(n)]
    save_npys(tmp_path / "in", list(data), stems)
    out = tmp_path / "out"
    proc = ok(run_cli("tiny", [tmp_path / "in"], out, timeout=60))
    names = sorted(os.listdir(out / "y"))
    assert names == [f"{s}.npy" for s in stems]
    for i, name in enumerate(names):
        y = np.load(out / "y" / name, allow_pickle=False)
        assert y.shape == (16,) and y.dtype == np.float32, name
        if i % 97 == 0 or i == n - 1:                   # spot checks: identity model
            same(y, data[i], name)
    assert f"processed   {n} input file(s), {n} samples, {n} batches" in proc.stdout
    assert f"wrote       {n} file(s)" in proc.stdout
    line = next(l for l in proc.stdout.splitlines() if l.startswith("throughput"))
    assert re.match(r"throughput\s+[\d.]+ samples/s, [\d.]+ files/s", line), line
    with capsys.disabled():
        print(f"\n[2,000 files, tiny, fast mode] {line}")


# ---------------------------------------------------------------- run: the output folder and its manifest


def test_manifest_refusal_and_force(tmp_path):
    xs = np.arange(3 * 16, dtype=np.float32).reshape(3, 16)
    save_npys(tmp_path / "in", list(xs), ["a", "b", "c"])
    out = tmp_path / "out"
    ok(run_cli("tiny", [tmp_path / "in"], out))
    m = json.loads((out / "fastexec-run.json").read_text())
    assert m["complete"] is True and m["files"] == ["y/a.npy", "y/b.npy", "y/c.npy"] and m["folders"] == ["y"]
    assert m["model"] == str(model_path("tiny")) and m["tool"]["version"] == fastexec.__version__
    assert m["options"]["mode"] == "overlap" and m["files_written"] == 3
    # a second run into the same folder is refused, before any work, naming --force
    (tmp_path / "in" / "c.npy").unlink()
    proc = run_cli("tiny", [tmp_path / "in"], out)
    assert proc.returncode == 1 and "not empty" in proc.stderr and "--force" in proc.stderr, proc.stderr
    assert sorted(p.name for p in (out / "y").iterdir()) == ["a.npy", "b.npy", "c.npy"]
    # --force removes what the manifest lists: no stale c.npy mixed into the new run
    ok(run_cli("tiny", [tmp_path / "in"], out, "--force"))
    assert sorted(p.name for p in (out / "y").iterdir()) == ["a.npy", "b.npy"]
    # anything the manifest does not list: refused, nothing removed
    (out / "notes.txt").write_text("mine")
    proc = run_cli("tiny", [tmp_path / "in"], out, "--force")
    assert proc.returncode == 1 and "notes.txt" in proc.stderr and "nothing was removed" in proc.stderr
    assert (out / "y" / "a.npy").exists() and (out / "notes.txt").exists()


def test_force_refuses_a_folder_without_manifest(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(16, np.float32))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.npy").write_bytes(b"x")
    proc = run_cli("tiny", [tmp_path / "x.npy"], out, "--force")
    assert proc.returncode == 1 and "fastexec-run.json" in proc.stderr and (out / "keep.npy").exists()


def test_unwritable_output_parent_fails_first(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(16, np.float32))
    (tmp_path / "file").write_text("")
    proc = run_cli("tiny", [tmp_path / "x.npy"], tmp_path / "file" / "such" / "out")
    assert proc.returncode == 1 and "cannot create it" in proc.stderr, proc.stderr
