"""One executor over several devices (Executor(model, devices=[...]), the C API's open_devices,
fastexec bench/run --device 0,1,...).

This process's emulator has one device, so every case runs in a child interpreter whose emulator
has four (FASTEXEC_EMU_DEVICES=4); the child asserts on outputs against the numpy reference (the
helpers of test_executor) and prints JSON lines for the parent to assert on: results, error
types, codes and messages, and the emulator's live counters back at zero. Device failures come
from fault rules limited to one device (`API@D`, docs/emulator.md "Fault injection"), added at
run time, so their N counts the executions on that device from then on.
"""
import json
import pathlib

import pytest

from test_executor import FAULT_CODE, child_code, child_result, run_child

TESTS_DIR = pathlib.Path(__file__).resolve().parent
FOUR = {"FASTEXEC_EMU_DEVICES": "4"}
MODES = ("overlap", "serial")


def run4(body, timeout=120, **env):
    return child_result(run_child(child_code(body), timeout=timeout, **FOUR, **env))


def strict_env(strict):
    return {"FASTEXEC_EMU_STRICT": "1"} if strict else {}


# ---------------------------------------------------------------- every front end, in order


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
@pytest.mark.parametrize("mode", MODES)
def test_every_front_end_spreads_over_devices_in_order(mode, strict):
    """run (list, dict, array, one row), imap, submit/result out of order, staged: every batch
    equals the reference, on 4 devices, on 2 with 2 instances each, and on one device that is
    not device 0. Instance i holds a model loaded on devices[i % D]."""
    res = run4(f"""
        recs = []
        for name in ("multi-io", "dynamic-batch", "tiny", "resnet50-int8"):
            for devices, instances in (([0, 1, 2, 3], 1), ([3, 1], 2), ([2], 1)):
                with fastexec.Executor(emulator.sample_model(name), devices=devices, instances=instances,
                                       mode={mode!r}) as ex:
                    models_open = emulator.counters()["models"]
                    ran = T.check_all_paths(ex, name)
                    st = ex.stats()
                    recs.append({{"name": name, "devices": devices, "instances": instances, "got_devices": ex.devices,
                                 "got_instances": ex.instances, "model_devices": [m.device.id for m in ex.models],
                                 "models_open": models_open, "ran": ran, "batches": st["batches"],
                                 "stats_devices": st["devices"], "repr": repr(ex)}})
        c = emulator.counters()
        print(json.dumps({{"recs": recs, "live": T.live(), "findings": c["findings"]}}))
    """, **strict_env(strict))
    assert len(res["recs"]) == 12
    for r in res["recs"]:
        what = f"{r['name']} on {r['devices']} x{r['instances']}"
        d, k = r["devices"], r["instances"]
        assert r["got_devices"] == r["stats_devices"] == d and r["got_instances"] == k, what
        assert r["model_devices"] == [d[i % len(d)] for i in range(k * len(d))], what
        assert r["models_open"] == k * len(d), what
        assert r["batches"] == r["ran"] > 0, what
        assert (f"devices={','.join(map(str, d))}" in r["repr"]) == (len(d) > 1), r["repr"]
    assert set(res["live"].values()) == {0}
    assert res["findings"] == 0


# ---------------------------------------------------------------- a device failure


@pytest.mark.parametrize("mode", MODES)
def test_a_device_failure_fails_only_its_batches(mode):
    """Ticket t runs on devices[t % 4] (tickets count every batch of the executor, in order).
    The 3rd execution on device 2 failing fails that batch of run(), of imap() and of
    submit/result, reported by its index, and nothing else; every execution on device 1 failing
    fails exactly the batches on device 1; every other batch is complete and correct, and the
    executor works after."""
    res = run4(f"""
        name = "multi-io"
        x = T.make_inputs(name, 2 * 40 + 1, seed=5)           # 41 batches of 2 rows, the last one partial
        want = T.expected_outputs(name, x)
        batches, exp = T.split(x, 2), T.split(want, 2)
        nb = len(batches)
        out = {{"nb": nb}}

        def ok_rows(outputs, b):
            return T.outputs_match_rows(outputs, want, 2, b)

        def next_ticket():   # the ticket the next batch gets (one batch through, outside any fault rule)
            t = ex.submit(batches[0])
            ex.result(t)
            return t + 1

        with fastexec.Executor(emulator.sample_model(name), devices=[0, 1, 2, 3], mode={mode!r}) as ex:
            out["run_base"] = next_ticket()
            with T.fault(f"task:aclmdlExecuteAsync@2:3:{{T.FAULT_CODE}}"):
                try:
                    ex.run(x)
                except fastexec.BatchError as e:
                    out["run"] = {{"index": e.index, "code": e.error.code, "api": e.error.api, "completed": e.completed,
                                  "rows_ok": all(ok_rows(e.outputs, b) for b in e.completed)}}
            out["imap_base"] = next_ticket()
            with T.fault(f"task:aclmdlExecuteAsync@2:3:{{T.FAULT_CODE}}"):
                yielded = []
                try:
                    for outs in ex.imap(batches):
                        yielded.append(outs)
                except fastexec.BatchError as e:
                    out["imap"] = {{"index": e.index, "code": e.error.code, "yielded": len(yielded),
                                   "yielded_ok": all(T.outputs_match_rows(o, e2, 2, 0) for o, e2 in zip(yielded, exp)),
                                   "completed": [k for k, _ in e.completed],
                                   "completed_ok": all(T.outputs_match_rows(o, exp[k], 2, 0) for k, o in e.completed)}}
            with T.fault(f"task:aclmdlExecuteAsync@2:3:{{T.FAULT_CODE}}"):
                tickets = [ex.submit(b) for b in batches[:12]]
            failed, good = [], True
            for k, t in enumerate(tickets):
                try:
                    good &= T.outputs_match_rows(ex.result(t), exp[k], 2, 0)
                except fastexec.BatchError as e:
                    failed.append([k, t, e.index, e.error.code])
            on_2 = [t for t in tickets if t % 4 == 2]
            out["submit"] = {{"failed": failed, "third_on_2": on_2[2], "first_ticket": tickets[0], "others_ok": good}}
            # every execution on device 1 fails
            out["dead_base"] = next_ticket()
            with T.fault(*[f"task:aclmdlExecuteAsync@1:{{n}}:{{T.FAULT_CODE}}" for n in range(1, 12)]):
                try:
                    ex.run(x)
                except fastexec.BatchError as e:
                    out["dead"] = {{"index": e.index, "code": e.error.code, "completed": e.completed,
                                   "rows_ok": all(ok_rows(e.outputs, b) for b in e.completed)}}
            after = ex.run(x)
            out["after_ok"] = all(np.array_equal(a, b) for a, b in zip(after, want))
            out["stats_batches"] = ex.stats()["batches"]
        c = emulator.counters()
        out.update(live=T.live(), findings=c["findings"])
        print(json.dumps(out))
    """)
    nb = res["nb"]

    def third_on_2(base):
        return [k for k in range(nb) if (base + k) % 4 == 2][2]

    bad = third_on_2(res["run_base"])
    assert res["run"] == {"index": bad, "code": FAULT_CODE, "api": "aclrtSynchronizeEvent",   # (a task fails at its sync)
                          "completed": [k for k in range(nb) if k != bad], "rows_ok": True}
    imap, bad = res["imap"], third_on_2(res["imap_base"])
    assert imap["index"] == bad and imap["code"] == FAULT_CODE and imap["yielded"] == bad and imap["yielded_ok"]
    assert imap["completed"] == list(range(bad + 1, bad + 1 + len(imap["completed"]))) and imap["completed_ok"]
    assert len(imap["completed"]) >= 3, "the later batches in flight on the other devices"
    sub = res["submit"]
    assert sub["others_ok"]
    assert [f[1] for f in sub["failed"]] == [sub["third_on_2"]], sub
    assert sub["failed"][0][2] == sub["third_on_2"] and sub["failed"][0][3] == FAULT_CODE   # BatchError.index: the ticket
    dead = res["dead"]
    on_1 = [k for k in range(nb) if (res["dead_base"] + k) % 4 == 1]
    assert dead["index"] == on_1[0] and dead["code"] == FAULT_CODE and dead["rows_ok"]
    assert dead["completed"] == [k for k in range(nb) if k not in on_1]
    assert res["after_ok"]
    assert set(res["live"].values()) == {0} and res["findings"] == 0


# ---------------------------------------------------------------- construction


def test_construction_on_several_devices():
    """A given Model's device must be in the list (the others load from its path, or from the
    bytes given to the executor); bad lists are refused with the reason; a device that does not
    exist fails the construction, which leaves nothing behind; the devices and the given model
    refuse to close while the executor uses them."""
    res = run4("""
        import pathlib
        path = emulator.sample_model("multi-io")
        x = T.make_inputs("multi-io", 9, seed=1)
        want = T.expected_outputs("multi-io", x)
        out = {}

        def err(fn):
            try:
                fn()
            except Exception as e:
                return [type(e).__name__, str(e), getattr(e, "code", None), T.live(), isinstance(e, fastexec.AclError)]
            return None

        base = T.live()
        with fastexec.Device(1) as d1, fastexec.Model(path, device=d1) as m1:
            out["not_in_list"] = err(lambda: fastexec.Executor(m1, devices=[0, 2]))
            with fastexec.Executor(m1, devices=[0, 1]) as ex:
                out["given"] = {"models_at": [m.device.id for m in ex.models], "given_is_1": ex.models[1] is m1,
                                "device": ex.device.id, "ok": all(np.array_equal(a, b) for a, b in zip(ex.run(x), want))}
                out["device_busy"] = err(d1.close)
                out["model_busy"] = err(m1.close)
            out["model_open_after"] = not m1.closed
            data = pathlib.Path(path).read_bytes()
            with fastexec.Model(data, device=d1) as mb:
                out["bytes_model"] = err(lambda: fastexec.Executor(mb, devices=[1, 3]))
        out["base"] = base
        with fastexec.Executor(data, devices=[3, 2]) as ex:
            out["bytes_ok"] = all(np.array_equal(a, b) for a, b in zip(ex.run(x), want))
        out["twice"] = err(lambda: fastexec.Executor(path, devices=[0, 2, 0]))
        out["empty"] = err(lambda: fastexec.Executor(path, devices=[]))
        out["negative"] = err(lambda: fastexec.Executor(path, devices=[0, -1]))
        out["not_a_list"] = err(lambda: fastexec.Executor(path, devices=1.5))
        out["missing_device"] = err(lambda: fastexec.Executor(path, devices=[0, 1, 7]))
        with fastexec.Executor(path, devices=2) as ex:
            out["int"] = [ex.devices, ex.device.id]
        c = emulator.counters()
        out.update(live=T.live(), findings=c["findings"])
        print(json.dumps(out))
    """)
    kind, msg, _, live_after, _ = res["not_in_list"]
    assert kind == "ValueError" and "loaded on device 1, which is not in devices=[0, 2]" in msg
    assert res["given"] == {"models_at": [0, 1], "given_is_1": True, "device": 1, "ok": True}
    assert res["device_busy"][0] == "InUseError" and "Executor" in res["device_busy"][1]
    assert res["model_busy"][0] == "InUseError"
    assert res["model_open_after"]
    kind, msg, *_ = res["bytes_model"]
    assert kind == "ValueError" and "loaded from bytes" in msg and "pass the bytes" in msg
    assert res["bytes_ok"]
    assert res["twice"][0] == "ValueError" and "lists a device twice" in res["twice"][1]
    for case in ("empty", "negative"):
        assert res[case][0] == "ValueError" and "non-empty list of device ids" in res[case][1], res[case]
    assert res["not_a_list"][0] == "TypeError" and "devices must be a list" in res["not_a_list"][1]
    kind, msg, code, live_after, is_acl = res["missing_device"]
    assert is_acl and code == 107001 and "aclrtSetDevice" in msg, res["missing_device"]   # ACL_ERROR_RT_INVALID_DEVICEID
    assert set(live_after.values()) == {0}, "a failed construction left resources behind"
    assert res["int"] == [[2], 2]
    assert set(res["live"].values()) == {0} and res["findings"] == 0


# ---------------------------------------------------------------- statistics


@pytest.mark.parametrize("mode,instances", [("overlap", 1), ("serial", 2)])
def test_stats_bound_counts_one_engine_of_each_kind_per_device(mode, instances):
    """The calibrated bound of D devices is one device's (with its instances) divided by D; the
    compute-only rate is D compute engines'; utilisation their mean. The C API reports the same."""
    res = run4(f"""
        sys.path.insert(0, {str(TESTS_DIR)!r})
        import pathlib, tempfile, test_capi
        d = tempfile.mkdtemp()
        test_capi.build(test_capi.ROOT / "tests" / "capi" / "capi_probe.c", pathlib.Path(d))
        sys.path.insert(0, d)
        import capi_probe
        x = T.make_inputs("multi-io", 2 * 30, seed=2)
        out = {{}}
        with fastexec.Executor(emulator.sample_model("multi-io"), devices=[0, 1, 2, 3], mode={mode!r},
                               instances={instances}) as ex:
            cal = ex.calibrate(20)
            ex.run(x)
            out["py"] = ex.stats()
            out["c"] = capi_probe.stats_v3(ex)
            out["cal"] = cal
        print(json.dumps(out))
    """)
    py, c, cal = res["py"], res["c"], res["cal"]
    h, e, d = cal["h2d_ms"], cal["execute_ms"], cal["d2h_ms"]
    one_device = max(h, e, d) if mode == "overlap" else max((h + e + d) / instances, h, e, d)
    b = py["bound"]
    assert py["devices"] == [0, 1, 2, 3] and py["instances"] == instances
    assert b["source"] == "calibration"
    assert b["period_ms"] == pytest.approx(one_device / 4)
    assert b["compute_only_samples_per_s"] == pytest.approx(4 * 2 * 1e3 / e)
    assert b["device_utilization"] == pytest.approx(py["batches"] * e / 1e3 / py["wall_s"] / 4)
    assert c["bound_period_ms"] == pytest.approx(b["period_ms"])
    assert c["compute_only_samples_per_s"] == pytest.approx(b["compute_only_samples_per_s"])
    assert c["device_utilization"] == pytest.approx(b["device_utilization"])


# ---------------------------------------------------------------- the C API


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_c_api_open_devices(strict):
    """open_devices runs every batch in ticket order over the devices (outputs equal the
    reference); a device's failed batch is reported by ticket; bad device lists are refused;
    a C extension driving a Python executor over several devices from native threads too."""
    res = run4(f"""
        sys.path.insert(0, {str(TESTS_DIR)!r})
        import pathlib, tempfile, test_capi
        d = pathlib.Path(tempfile.mkdtemp())
        test_capi.build(test_capi.ROOT / "tests" / "capi" / "capi_probe.c", d)
        test_capi.build(test_capi.ROOT / "examples" / "capi" / "fxpipe.c", d)
        sys.path.insert(0, str(d))
        import capi_probe, fxpipe
        out = {{}}
        for name in ("multi-io", "dynamic-batch", "tiny"):
            path = emulator.sample_model(name)
            n = T.batch_of(name) * 23 + (1 if T.batch_of(name) > 1 else 0)
            x = T.make_inputs(name, n, seed=3)
            want = T.expected_outputs(name, x)
            st, msg, got = capi_probe.open_devices_run(path, [2, 0, 3], [a.tobytes() for a in x], n)
            out[name] = [st, msg, got is not None and [bytes(g) for g in got] == [w.tobytes() for w in want]]
            with fastexec.Executor(path, devices=[0, 1, 2, 3]) as ex:
                outputs = [np.zeros_like(w) for w in want]
                fxpipe.run(ex, x, outputs, n, threads=2)
                out[name].append(all(np.array_equal(o, w, equal_nan=True) for o, w in zip(outputs, want)))
        x = T.make_inputs("multi-io", 2 * 12, seed=3)
        with T.fault(f"task:aclmdlExecuteAsync@3:2:{{T.FAULT_CODE}}"):
            out["fault"] = capi_probe.open_devices_run(emulator.sample_model("multi-io"), [2, 0, 3],
                                                       [a.tobytes() for a in x], 2 * 12)[:2]
        out["twice"] = capi_probe.open_devices_run(emulator.sample_model("tiny"), [1, 1], [], 0)[:2]
        out["none"] = capi_probe.open_devices_run(emulator.sample_model("tiny"), [], [], 0)[:2]
        out["missing"] = capi_probe.open_devices_run(emulator.sample_model("tiny"), [0, 9], [], 0)[:2]
        c = emulator.counters()
        out.update(live=T.live(), findings=c["findings"])
        print(json.dumps(out))
    """, **strict_env(strict))
    for name in ("multi-io", "dynamic-batch", "tiny"):
        assert res[name] == [0, res[name][1], True, True], (name, res[name])
    st, msg = res["fault"]
    # devices [2, 0, 3]: ticket k runs on device [2, 0, 3][k % 3]; tickets 0..2 are open's warm-up
    # (one per instance), so device 3's second execution is ticket 5, the C caller's third batch
    assert st == 5 and msg.startswith("batch 5: aclrtSynchronizeEvent failed with ACL error 507011"), msg
    assert res["twice"] == [8, res["twice"][1]] and "lists a device twice" in res["twice"][1]
    assert res["none"][0] == 1 and "n_devices must be from 1 to 64" in res["none"][1]
    assert res["missing"][0] == 8 and "ACL_ERROR_RT_INVALID_DEVICEID (107001)" in res["missing"][1], res["missing"]
    assert set(res["live"].values()) == {0} and res["findings"] == 0


# ---------------------------------------------------------------- throughput


@pytest.mark.timing
def test_four_devices_run_a_compute_bound_model_four_times_faster():
    """5 ms of compute per batch and 2 KiB each way: 4 devices give >= 3.5x one device's
    throughput (the bound is 4x), with identical outputs. Best of three interleaved rounds each
    (a host preempted by other processes stretches a round, never shortens one; a stretched
    one-device round would inflate the ratio, so the upper check is each run's own fraction of
    its bound); the emulator's overruns are printed."""
    res = run4("""
        import time
        path = emulator.sample_model("compute-bound")
        x = T.make_inputs("compute-bound", 16 * 160, seed=7)
        want = T.expected_outputs("compute-bound", x)
        out = {}
        execs = {n: fastexec.Executor(path, devices=list(range(n))) for n in (1, 4)}
        for _ in range(3):
            for n, ex in execs.items():
                ex.run(x[0][:16 * 8])
                ex.reset_stats()
                before = emulator.counters()["overruns"]
                t0 = time.perf_counter()
                got = ex.run(x)
                rec = {"s": time.perf_counter() - t0, "ok": all(np.array_equal(g, w) for g, w in zip(got, want)),
                       "overruns": emulator.counters()["overruns"] - before, "efficiency": ex.stats()["bound"]["efficiency"]}
                if n not in out or rec["s"] < out[n]["s"]:
                    out[n] = dict(rec, ok=rec["ok"] and out.get(n, rec)["ok"])
        for ex in execs.values():
            ex.close()
        print(json.dumps(out))
    """, FASTEXEC_EMU_FAST="0")
    one, four = res["1"], res["4"]
    ratio = one["s"] / four["s"]
    print(f"1 device {one['s']:.3f} s, 4 devices {four['s']:.3f} s: {ratio:.2f}x "
          f"(efficiency {one['efficiency']:.3f} / {four['efficiency']:.3f}, overruns {one['overruns']} / {four['overruns']})")
    assert one["ok"] and four["ok"]
    assert ratio >= 3.5
    assert one["efficiency"] <= 1.05 and four["efficiency"] <= 1.05, "faster than the devices' compute engines allow"


def test_device_fault_rules_are_checked():
    """`API@D` takes a device id 0..63; anything else after '@' is refused with the reason."""
    from test_executor import _emu, clear_faults

    lib = _emu()
    try:
        assert lib.fxemuAddFault(b"task:aclmdlExecuteAsync@3:1:507011") == 0
        for bad in (b"task:aclmdlExecuteAsync@:1:507011", b"task:aclmdlExecuteAsync@x:1:507011",
                    b"task:aclmdlExecuteAsync@64:1:507011", b"task:aclmdlExecuteAsync@1x:1:507011"):
            assert lib.fxemuAddFault(bad) == 100000, bad       # ACL_ERROR_INVALID_PARAM
    finally:
        clear_faults()
