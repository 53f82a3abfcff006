"""fastexec.ray: the Ray Data predictor, on a real local Ray cluster (one per module:
ray.init(num_cpus=4, resources={"NPU": 2}, include_dashboard=False)) whose workers run the
emulator with two devices in fast mode (the job's runtime_env), and directly in this process.

Outputs are compared bit for bit with Executor.run on the same rows in this process; each actor
reports the NPU Ray gave it, the ASCEND_RT_VISIBLE_DEVICES it saw and how many devices its ACL
runtime saw. A device fault comes from an emulator fault rule limited to one physical device
(FASTEXEC_EMU_FAULTS with API@D), given to the actors through their runtime_env.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the Ray tests need ray[data] (the test extra)")
import ray.data  # noqa: E402

import fastexec  # noqa: E402
from fastexec import emulator  # noqa: E402
from fastexec.ray import Predictor, RowsFailed  # noqa: E402

from test_executor import FAULT_CODE, fault  # noqa: E402

MODEL = emulator.sample_model("compute-bound")      # x float32 (16, 32) -> y = 0.5 x + 1
ROWS = 1600
# No FASTEXEC_EMU_DEVICES: the predictor makes each actor's emulator cover its NPU id itself.
WORKER_ENV = {"FASTEXEC_BACKEND": "emulator", "FASTEXEC_EMU_FAST": "1"}


def rows_of(ids):
    """The input row of each id (deterministic, so the driver and the workers agree)."""
    ids = np.asarray(ids, dtype=np.float32)
    return (ids[:, None] * 0.25 + np.arange(32, dtype=np.float32)[None, :] * 0.5).astype(np.float32)


def with_x(batch):
    return {"id": batch["id"], "x": rows_of(batch["id"])}


@pytest.fixture(scope="module")
def cluster():
    # the workers cannot import this file: the functions and classes of it they run go by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=4, resources={"NPU": 2}, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": WORKER_ENV})
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    # every actor of a pool up before the first batch (a timeout, not a wait: starting an actor
    # process takes over a minute when two busy loops share this 2-core machine)
    ctx.wait_for_min_actors_s = 600
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def expected():
    """Executor.run over all ROWS rows, in this process."""
    with fastexec.Executor(MODEL) as ex:
        return ex.run(rows_of(np.arange(ROWS)))[0]


def traced(**kwargs):
    """A Predictor that also reports where it ran (defined here, so Ray ships it by value)."""

    class Traced(Predictor):
        def __call__(self, batch):
            out = super().__call__(batch)
            n = len(out["id"])
            out["npu"] = np.array([",".join(self.npus)] * n)
            out["visible"] = np.array([os.environ.get("ASCEND_RT_VISIBLE_DEVICES", "")] * n)
            out["acl_device_count"] = np.full(n, fastexec.backend_info()["device_count"])
            out["pid"] = np.full(n, os.getpid())
            return out

    return Traced


def test_import_fastexec_does_not_import_ray():
    code = "import sys, fastexec; fastexec.Executor; print('ray' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, FASTEXEC_BACKEND="emulator"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


# ---------------------------------------------------------------- on the cluster


def check_actors(actors, want_npus):
    """(pid, npu, visible, device count) per actor: one NPU each, its own, the only one it sees."""
    assert len({a[0] for a in actors}) == len(actors), f"an actor reported two NPUs: {actors}"
    assert {a[1] for a in actors} <= want_npus and len({a[1] for a in actors}) == len(actors), \
        f"one NPU per actor, each its own: {actors}"
    for pid, npu, visible, count in actors:
        assert visible == npu, "Ray set ASCEND_RT_VISIBLE_DEVICES to the actor's NPU"
        assert count == 1, "the actor's ACL runtime saw only its own device"


def test_pipeline_outputs_equal_executor_run_each_actor_on_its_own_npu(cluster, expected):
    """Every row once, bit for bit Executor.run's. Which of the pool's two actors takes which
    batch is Ray's choice (a busy machine may give one actor all of them); each actor that served
    ran on its own NPU."""
    ds = ray.data.range(ROWS, override_num_blocks=8).map_batches(with_x)
    out = ds.map_batches(traced(), fn_constructor_kwargs={"model": MODEL}, batch_size=64, concurrency=2,
                         resources={"NPU": 1}).take_all()
    assert len(out) == ROWS
    out.sort(key=lambda r: r["id"])
    assert [r["id"] for r in out] == list(range(ROWS)), "every row exactly once"
    y = np.stack([r["y"] for r in out])
    assert y.dtype == expected.dtype and np.array_equal(y, expected)
    assert np.array_equal(np.stack([r["x"] for r in out]), rows_of(np.arange(ROWS))), "the input column is kept"
    check_actors({(r["pid"], r["npu"], r["visible"], r["acl_device_count"]) for r in out}, {"0", "1"})


def test_two_actors_run_on_the_two_npus(cluster, expected):
    """Two predictor actors holding one NPU each, as map_batches places them, both called: NPUs
    0 and 1, one each, and the right outputs from both."""
    Traced = traced()

    @ray.remote(num_cpus=1, resources={"NPU": 1})
    class Holder:
        def __init__(self):
            self.predictor = Traced(model=MODEL)

        def call(self, batch):
            return self.predictor(batch)

    holders = [Holder.remote() for _ in range(2)]
    try:
        batch = with_x({"id": np.arange(64)})
        outs = ray.get([h.call.remote(batch) for h in holders], timeout=600)   # a failure, never a hang
    finally:
        for h in holders:
            ray.kill(h)
    for out in outs:
        assert np.array_equal(out["y"], expected[:64])
    actors = {(int(o["pid"][0]), str(o["npu"][0]), str(o["visible"][0]), int(o["acl_device_count"][0])) for o in outs}
    assert len(actors) == 2, actors
    check_actors(actors, {"0", "1"})


@pytest.mark.parametrize("batch_format", ["pandas", "pyarrow"])
def test_pipeline_any_batch_size_and_format(cluster, expected, batch_format):
    """batch_size 50 (three full model batches and a padded one), pandas and arrow batches: the
    same outputs."""
    ds = ray.data.range(ROWS // 4, override_num_blocks=4).map_batches(with_x)
    out = ds.map_batches(Predictor, fn_constructor_kwargs={"model": MODEL}, batch_size=50, concurrency=2,
                         resources={"NPU": 1}, batch_format=batch_format).take_all()
    out.sort(key=lambda r: r["id"])
    assert [r["id"] for r in out] == list(range(ROWS // 4))
    assert np.array_equal(np.stack([r["y"] for r in out]), expected[:ROWS // 4])


def test_device_fault_in_one_actor_is_a_clear_error(cluster):
    """The third execution on NPU 1 fails (the first is the executor's warm-up): the pipeline
    raises, naming the rows, the NPU and the ACL error."""
    ds = ray.data.range(ROWS // 4, override_num_blocks=2).map_batches(with_x)
    env = dict(WORKER_ENV, FASTEXEC_EMU_FAULTS=f"task:aclmdlExecuteAsync@1:3:{FAULT_CODE}")
    with pytest.raises(Exception) as ei:
        ds.map_batches(Predictor, fn_constructor_kwargs={"model": MODEL}, batch_size=64, concurrency=2,
                       resources={"NPU": 1}, runtime_env={"env_vars": env}).materialize()
    text = str(ei.value)
    assert "RowsFailed" in text and "rows 16..31 of a Ray batch of 64 rows failed on NPU 1" in text, text[-3000:]
    assert "ACL_ERROR_RT_MODEL_EXECUTE" in text and "507011" in text


# ---------------------------------------------------------------- the predictor in this process


def test_predictor_in_process_formats_casts_and_errors(no_leaks):
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    ids = np.arange(37)
    x = rows_of(ids)
    with fastexec.Executor(MODEL) as ex:
        want = ex.run(x)[0]
    p = Predictor(MODEL, outputs={"y": "score"}, id_column="id")
    try:
        assert p.devices == [0] and p.npus == []          # outside a Ray worker: device 0
        got = p({"id": ids, "x": x})
        assert set(got) == {"id", "x", "score"} and got["x"] is x, "the input columns pass through, not copied"
        assert np.array_equal(got["score"], want)
        df = pd.DataFrame({"id": ids, "x": list(x)})          # a column of per-row arrays
        assert np.array_equal(p(df)["score"], want)
        table = pa.table({"id": ids, "x": pa.array(list(x), type=pa.list_(pa.float32(), 32))})
        assert np.array_equal(p(table)["score"], want)
        assert np.array_equal(p({"id": ids[:5], "x": x[:5].astype(np.float16)})["score"], want[:5]), "a safe cast"
        assert p({"id": ids[:0], "x": x[:0]})["score"].shape == (0, 32)
        with pytest.raises(TypeError, match="column 'x' is float64, the model input is float32"):
            p({"id": ids, "x": x.astype(np.float64)})
        with pytest.raises(KeyError, match="no column 'x'"):
            p({"id": ids, "z": x})
        with pytest.raises(ValueError, match=r"rows of shape \(16,\)"):
            p({"id": ids, "x": x[:, :16]})
        with pytest.raises(ValueError, match="already has a column 'score'"):
            p({"id": ids, "x": x, "score": ids})
        with fault(f"task:aclmdlExecuteAsync:2:{FAULT_CODE}"):
            with pytest.raises(RowsFailed) as ei:
                p({"id": ids + 1000, "x": x})
        e = ei.value
        assert e.rows == [(16, 32)] and e.index == 1 and e.error.code == FAULT_CODE
        assert e.ids == list(range(1016, 1032))
        assert str(e).startswith("rows 16..31 of a Ray batch of 37 rows failed on device 0: ")
        assert "ids: 1016, 1017" in str(e)
        assert np.array_equal(p({"id": ids, "x": x})["score"], want), "usable after a failure"
    finally:
        p.close()
    with pytest.raises(ValueError, match="not outputs of the model"):
        Predictor(MODEL, outputs={"logits": "score"})


def test_ray_npu_ids_to_acl_devices(monkeypatch):
    from fastexec.ray import acl_devices, emulate_npus

    monkeypatch.setenv("ASCEND_RT_VISIBLE_DEVICES", "1,3")
    assert acl_devices(["1", "3"]) == [0, 1] and acl_devices(["3"]) == [1]
    with pytest.raises(RuntimeError, match="gave this worker NPU 2, but ASCEND_RT_VISIBLE_DEVICES='1,3' hides it"):
        acl_devices(["2"])
    monkeypatch.delenv("ASCEND_RT_VISIBLE_DEVICES")      # RAY_EXPERIMENTAL_NOSET_ASCEND_RT_VISIBLE_DEVICES=1
    assert acl_devices(["1", "3"]) == [1, 3]
    monkeypatch.setenv("FASTEXEC_EMU_DEVICES", "")      # (so that the test's own setting is undone after it)
    monkeypatch.delenv("FASTEXEC_EMU_DEVICES")
    emulate_npus(["0", "3"])
    assert os.environ["FASTEXEC_EMU_DEVICES"] == "4"
    emulate_npus(["7"])
    assert os.environ["FASTEXEC_EMU_DEVICES"] == "4", "a count already set is kept"
