"""Dynamic models through the executor: dynamic batch at the gear each batch needs, dynamic
HW / dims gears and dynamic shapes batch by batch, with real output dims, every output equal to
the numpy reference bit for bit; clear errors before anything is queued; gear changes only
after a drain, counted in stats, and none for batches of one gear. Every test runs under
`no_leaks`: the emulator's live counters are back at baseline and its checked mode (which
reports a gear change while the model runs) reported nothing."""
import numpy as np
import pytest

import fastexec
from fastexec import emulator
from fastexec.emulator.model_file import ModelDef, TensorDef, reference_outputs, write_model
from fastexec.emulator.samples import SAMPLES

from test_executor import child_code, child_result, expected_of, random_array, run_child


def bits(a):
    """The array's bytes with its shape: bit-for-bit comparison (NaNs included)."""
    return a.shape, a.dtype, a.tobytes()


def assert_bit_equal(got, want, what):
    assert len(got) == len(want), what
    for g, w in zip(got, want):
        assert bits(g) == bits(w), f"{what}: {g.dtype}{g.shape} vs {w.dtype}{w.shape}"


def gear_inputs(model, shapes, rng):
    return [random_array(rng, t.dtype, s) for t, s in zip(model.inputs, shapes)]


def shape_cases(model, rng, n):
    """n random input shapes inside the ranges of a dynamic-shape model."""
    cases = []
    for _ in range(n):
        values = [int(rng.integers(lo, hi + 1)) for lo, hi in model.dynamic_shape]
        cases.append(model.shapes_of(values)[0])
    return cases


# ---------------------------------------------------------------- dynamic HW / dims / shape


@pytest.mark.parametrize("name", ["dynamic-hw", "dynamic-dims"])
def test_every_gear_through_imap_equals_reference(no_leaks, name):
    model = SAMPLES[name]
    rng = np.random.default_rng(1)
    gears = [ins for ins, _ in model.profile_shapes()]
    batches = [gear_inputs(model, g, rng) for g in gears + gears[::-1]]   # each gear, then back down
    with fastexec.Executor(emulator.sample_model(name)) as ex:
        got = list(ex.imap(batches))
        stats = ex.stats()
    assert len(got) == len(batches)
    for k, (g, b) in enumerate(zip(got, batches)):
        want = reference_outputs(model, b)
        assert [o.shape for o in g] == [tuple(s) for s in model.shapes_of(model.match_shapes([a.shape for a in b]))[1]]
        assert_bit_equal(g, want, f"{name} batch {k}")
    assert stats["batches"] == len(batches)
    # every change of gear waited for the batches in flight (or found none); never more
    assert stats["drains"] <= len(batches) - 1


def test_six_random_shapes_through_imap_equal_reference(no_leaks):
    model = SAMPLES["dynamic-shape"]
    rng = np.random.default_rng(2)
    shapes = shape_cases(model, rng, 6)
    batches = [gear_inputs(model, s, rng) for s in shapes]
    with fastexec.Executor(emulator.sample_model("dynamic-shape")) as ex:
        got = list(ex.imap(batches))
        stats = ex.stats()
    for k, (g, b, s) in enumerate(zip(got, batches, shapes)):
        assert g[0].shape == s[0], f"shape {k}: real dims {g[0].shape}, expected {s[0]}"
        assert_bit_equal(g, reference_outputs(model, b), f"shape {k} {s}")
    # a dynamic shape is per dataset: no model state, so no drain and no gear
    assert stats["drains"] == 0 and stats["gear_sets"] == 0


def test_submit_run_and_dict_inputs_on_dynamic_dims(no_leaks):
    model = SAMPLES["dynamic-dims"]
    rng = np.random.default_rng(3)
    (ins1, _), (ins2, _) = model.profile_shapes()[:2]
    a, b = gear_inputs(model, ins1, rng), gear_inputs(model, ins2, rng)
    with fastexec.Executor(emulator.sample_model("dynamic-dims"), depth=2) as ex:
        tickets = [ex.submit({"ids": a[0], "mask": a[1]}), ex.submit(b)]
        assert_bit_equal(ex.result(tickets[1]), reference_outputs(model, b), "submit gear 1")
        assert_bit_equal(ex.result(tickets[0]), reference_outputs(model, a), "submit gear 0")
        out = [np.empty_like(o) for o in reference_outputs(model, b)]
        got = ex.run(b, out=out)
        assert got[0] is out[0]
        assert_bit_equal(out, reference_outputs(model, b), "run gear 1")


@pytest.mark.parametrize("name,bad,needle", [
    ("dynamic-hw", [((2, 3, 16, 17), "float32")], "input 'image': shape (2, 3, 16, 17) is no gear of the model "
     "(gears: 'image' (2, 3, 16, 16); 'image' (2, 3, 32, 32); 'image' (2, 3, 48, 64))"),
    ("dynamic-hw", [((2, 3, 16), "float32")], "input 'image': expected 4 dims"),
    ("dynamic-dims", [((1, 16), "int32"), ((2, 4), "float16")], "each shape is in some gear, but no one gear has them all"),
    ("dynamic-dims", [((3, 16), "int32"), ((1, 4), "float16")], "input 'ids': shape (3, 16) is no gear"),
    ("dynamic-shape", [((9, 4), "float32")], "input 'tokens': shape (9, 4) is outside the model's range: dim 0 must be "
     "in 1..8 (ranges: 'tokens' (1..8, 1..128))"),
    ("dynamic-shape", [((2, 129), "float32")], "dim 1 must be in 1..128"),
])
def test_shape_outside_profile_fails_before_queueing(no_leaks, name, bad, needle):
    with fastexec.Executor(emulator.sample_model(name)) as ex:
        before = ex.stats()
        arrays = [np.zeros(s, d) for s, d in bad]
        for call in (ex.submit, ex.run, lambda x: list(ex.imap([x]))):
            with pytest.raises((ValueError, fastexec.BatchError)) as ei:
                call(arrays)
            err = ei.value.error if isinstance(ei.value, fastexec.BatchError) else ei.value
            assert isinstance(err, ValueError) and needle in str(err), str(err)
        after = ex.stats()
        assert after["batches"] == before["batches"]
        # nothing half-done: the next good batch runs
        good = [np.zeros(s, t.dtype) for s, t in zip(SAMPLES[name].profile_shapes()[0][0], SAMPLES[name].inputs)]
        assert_bit_equal(ex.run(good), reference_outputs(SAMPLES[name], good), "after the rejection")


def test_dynamic_shape_output_larger_than_output_size_is_an_error(no_leaks):
    model = SAMPLES["dynamic-shape"]
    small = np.ones((2, 8), np.float32)          # 64 bytes of output
    big = np.ones((4, 100), np.float32)          # 1600 bytes
    with fastexec.Executor(emulator.sample_model("dynamic-shape"), output_size=256) as ex:
        assert_bit_equal(ex.run(small), reference_outputs(model, [small]), "fits")
        with pytest.raises(fastexec.FastexecError) as ei:
            ex.run(big)
        assert "'hidden'" in str(ei.value) and "1600" in str(ei.value), str(ei.value)
        assert_bit_equal(ex.run(small), reference_outputs(model, [small]), "after the failure")
    with pytest.raises(ValueError, match="output_size must be a positive int"):
        fastexec.Executor(emulator.sample_model("dynamic-shape"), output_size=0)


@pytest.mark.parametrize("name", ["dynamic-hw", "dynamic-dims"])
def test_staged_every_gear_equals_reference(no_leaks, name):
    """staged(shapes=) gives views of exactly the gear's shapes; filled in place, the batch runs
    at that gear and result() gives the outputs at their real dims, bit for bit."""
    model = SAMPLES[name]
    rng = np.random.default_rng(7)
    gears = [ins for ins, _ in model.profile_shapes()]
    with fastexec.Executor(emulator.sample_model(name), depth=2) as ex:
        names = [s.name for s in ex.inputs]
        tickets = []
        for gear in gears + gears[::-1]:
            x = gear_inputs(model, gear, rng)
            with ex.staged(shapes=dict(zip(names, gear))) as batch:
                assert [v.shape for v in batch.inputs] == [tuple(g) for g in gear]
                for view, a in zip(batch.inputs, x):
                    view[...] = a
            tickets.append((batch.ticket, x))
            if len(tickets) == 2:
                t, b = tickets.pop(0)
                assert_bit_equal(ex.result(t), reference_outputs(model, b), f"{name} gear {gear}")
        for t, b in tickets:
            assert_bit_equal(ex.result(t), reference_outputs(model, b), f"{name} last")


def test_staged_random_dynamic_shapes_equal_reference(no_leaks):
    model = SAMPLES["dynamic-shape"]
    rng = np.random.default_rng(8)
    with fastexec.Executor(emulator.sample_model("dynamic-shape")) as ex:
        for shapes in shape_cases(model, rng, 12):
            x = gear_inputs(model, shapes, rng)
            with ex.staged(shapes=[tuple(sh) for sh in shapes]) as batch:   # a list, in input order
                assert [v.shape for v in batch.inputs] == [tuple(sh) for sh in shapes]
                assert batch.rows == shapes[0][0]
                for view, a in zip(batch.inputs, x):
                    view[...] = a
            got = ex.result(batch.ticket)
            want = reference_outputs(model, x)
            assert [g.shape for g in got] == [w.shape for w in want]
            assert_bit_equal(got, want, f"shapes {shapes}")


def test_staged_bad_shape_is_refused_before_a_slot_is_taken(no_leaks):
    """Each refusal names the input, the shape given and what the profile allows; no slot was
    taken (the next batch has the next ticket) and the batches around it are exact."""
    hw = SAMPLES["dynamic-hw"]
    rng = np.random.default_rng(9)
    with fastexec.Executor(emulator.sample_model("dynamic-hw")) as ex:
        name = ex.inputs[0].name
        gear = [tuple(g) for g in hw.profile_shapes()[0][0]]
        x = gear_inputs(hw, gear, rng)
        t0 = ex.submit(x)
        assert_bit_equal(ex.result(t0), reference_outputs(hw, x), "before")
        bad = (gear[0][0], gear[0][1], 17, 16)
        with pytest.raises(ValueError) as ei:
            ex.staged(shapes={name: bad})
        msg = str(ei.value)
        assert f"input '{name}'" in msg and "(2, 3, 17, 16)" in msg and "gears:" in msg and "(2, 3, 48, 64)" in msg, msg
        with pytest.raises(ValueError, match=r"missing \['%s'\]" % name):
            ex.staged(shapes={"nope": gear[0]})
        with pytest.raises(ValueError, match="needs shapes="):
            ex.staged()
        with pytest.raises(TypeError, match=f"input '{name}' must be a sequence of ints"):
            ex.staged(shapes=[(2, 3, 16.0, 16)])
        with ex.staged(shapes=gear) as batch:
            batch.inputs[0][...] = x[0]
        assert batch.ticket == t0 + 1
        assert_bit_equal(ex.result(batch.ticket), reference_outputs(hw, x), "after")
        with pytest.raises(ValueError, match="rows must stay 2"):     # a shaped batch keeps its rows
            with ex.staged(shapes=gear) as batch:
                batch.rows = 1
        with ex.staged(shapes=gear) as batch:
            batch.inputs[0][...] = x[0]
        assert batch.ticket == t0 + 3 and len(ex.result(batch.ticket)) == 1
    with fastexec.Executor(emulator.sample_model("dynamic-shape")) as ex:
        with pytest.raises(ValueError) as ei:
            ex.staged(shapes=[(2, 129)])
        msg = str(ei.value)
        assert "input 'tokens'" in msg and "(2, 129)" in msg and "dim 1 must be in 1..128" in msg and "ranges: 'tokens' (1..8, 1..128)" in msg, msg
    with fastexec.Executor(emulator.sample_model("tiny")) as ex:
        with pytest.raises(ValueError, match="shapes= is for dynamic HW / dims / shape models"):
            ex.staged(shapes=[(1, 16)])


def test_model_describes_its_profile(device):
    with fastexec.Model(emulator.sample_model("dynamic-hw"), device=device) as m:
        assert m.dynamic_kind == "dynamic_hw" and m.dynamic_hw == [(16, 16), (32, 32), (48, 64)]
        assert m.inputs[0].shape_range == ((2, 2), (3, 3), (16, 48), (16, 64))
    with fastexec.Model(emulator.sample_model("dynamic-dims"), device=device) as m:
        assert m.dynamic_dims[1] == {"ids": (2, 32), "mask": (2, 4)}
    with fastexec.Model(emulator.sample_model("dynamic-shape"), device=device) as m:
        assert m.dynamic_kind == "dynamic_shape" and m.inputs[0].shape_range == ((1, 8), (1, 128))
        assert m.outputs[0].shape_range is None and m.batch_size == 8
    with fastexec.Model(emulator.sample_model("tiny"), device=device) as m:
        assert m.dynamic_kind is None and m.inputs[0].shape_range == ((1, 1), (16, 16))


# ---------------------------------------------------------------- dynamic batch: per-batch gears


def test_run_of_43_rows_returns_43_correct_rows(no_leaks):
    model = SAMPLES["dynamic-batch"]
    rng = np.random.default_rng(4)
    x = [random_array(rng, "float32", (43, 3, 16, 16))]
    with fastexec.Executor(emulator.sample_model("dynamic-batch"), depth=3) as ex:
        (y,) = ex.run(x)
        s = ex.stats()
    assert y.shape == (43, 10)
    assert bits(y) == bits(expected_of(model, x)[0])
    # five full batches at gear 8, the 3-row tail at gear 4: one gear change, after a drain
    assert s["batches"] == 6 and s["samples"] == 43
    assert s["drains"] <= 1


@pytest.mark.parametrize("rows,gear", [(1, 1), (2, 2), (3, 4), (5, 8), (8, 8)])
def test_submit_of_r_rows_runs_at_the_smallest_gear_holding_it(no_leaks, rows, gear):
    """The hidden tensor's value is the gear the emulator ran: the output rows past r are the
    gear's (here zero-padded) rows, which only a run at that gear writes."""
    model = SAMPLES["dynamic-batch"]
    x = random_array(np.random.default_rng(rows), "float32", (rows, 3, 16, 16))
    with fastexec.Executor(emulator.sample_model("dynamic-batch")) as ex:
        (y,) = ex.result(ex.submit([x]))
        assert bits(y) == bits(reference_outputs(model, [np.concatenate([x, np.zeros((gear - rows, 3, 16, 16), np.float32)])],
                                                 batch=gear)[0][:rows])
        assert ex.stats()["samples"] == rows


def test_alternating_gears_pay_only_the_drains_they_must(no_leaks):
    """Consecutive batches of one gear never drain; each change of gear with batches in flight
    drains once; with instances=2 each instance keeps its own gear."""
    rng = np.random.default_rng(5)
    one = [random_array(rng, "float32", (1, 3, 16, 16))]
    full = [random_array(rng, "float32", (8, 3, 16, 16))]
    with fastexec.Executor(emulator.sample_model("dynamic-batch"), depth=4) as ex:
        ex.reset_stats()
        list(ex.imap([full] * 12))
        assert ex.stats()["drains"] == 0 and ex.stats()["gear_sets"] == 0
        ex.reset_stats()
        list(ex.imap([one] * 12))           # one change at the start (nothing in flight then)
        s = ex.stats()
        assert s["drains"] == 0 and s["gear_sets"] == 4   # each slot's dataset set once
        ex.reset_stats()
        got = list(ex.imap([one, full] * 6))
        s = ex.stats()
        assert s["drains"] <= 11
        want_one, want_full = expected_of(SAMPLES["dynamic-batch"], one), expected_of(SAMPLES["dynamic-batch"], full)
        for k, g in enumerate(got):
            assert_bit_equal(g, want_one if k % 2 == 0 else want_full, f"batch {k}")


def test_dynamic_batch_custom_gears_and_threads(no_leaks, tmp_path):
    """Submits of random sizes from four threads at once: every batch right, checked mode clean."""
    import threading
    md = ModelDef(name="gears", inputs=(TensorDef("x", "int32", "ND", (-1, 5)),), outputs=(TensorDef("y", "int32", "ND", (-1, 5)),),
                  kernel="affine", scale=3, bias=1, compute_us=1, dynamic_batch=(1, 3, 7))
    write_model(tmp_path / "g.om", md)
    errors = []
    with fastexec.Executor(str(tmp_path / "g.om"), depth=3, instances=2) as ex:
        def worker(seed):
            rng = np.random.default_rng(seed)
            try:
                for _ in range(40):
                    rows = int(rng.integers(1, 8))
                    x = rng.integers(-1000, 1000, (rows, 5)).astype(np.int32)
                    (y,) = ex.result(ex.submit([x]))
                    if not np.array_equal(y, x * 3 + 1):
                        errors.append((seed, rows))
            except Exception as e:   # pragma: no cover - reported below
                errors.append(e)
        threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert ex.stats()["batches"] == 160
    assert errors == []


@pytest.mark.timing
def test_one_row_submits_execute_at_gear_one():
    """Real timing: twenty 1-row submits execute at gear 1's modelled time (100 + 20 us), well
    below the largest gear's (260 us); full batches at 260 us. Medians in one run."""
    proc = run_child(child_code("""
        import numpy as np
        rng = np.random.default_rng(0)
        one = [rng.standard_normal((1, 3, 16, 16)).astype(np.float32)]
        full = [rng.standard_normal((8, 3, 16, 16)).astype(np.float32)]
        out = {}
        with fastexec.Executor(emulator.sample_model("dynamic-batch"), depth=2) as ex:
            before = emulator.counters()["overruns"]
            for label, x in (("one", one), ("full", full)):
                ex.reset_stats()
                for _ in range(20):
                    ex.result(ex.submit(x))
                out[label] = ex.stats()["execute"]
            out["overruns"] = emulator.counters()["overruns"] - before
        print(json.dumps({"runs": out, "live": T.live(), "findings": emulator.counters()["findings"]}))
    """), FASTEXEC_EMU_FAST="0")
    res = child_result(proc)
    assert set(res["live"].values()) == {0} and res["findings"] == 0
    one, full = res["runs"]["one"], res["runs"]["full"]
    print(f"execute p50: 1 row {one['p50_ms']:.4f} ms (model 0.12), 8 rows {full['p50_ms']:.4f} ms (model 0.26)")
    assert one["count"] == 20 and full["count"] == 20
    assert one["p50_ms"] == pytest.approx(0.12, abs=0.02)
    assert full["p50_ms"] == pytest.approx(0.26, abs=0.02)
    assert one["p50_ms"] < 0.6 * full["p50_ms"]
