"""AIPP through the executor: static AIPP models run on raw frames, dynamic AIPP models take an
AippConfig (per executor, or per batch with submit), and every parameter's effect matches the
numpy reference (fastexec.emulator.model_file.reference_outputs) bit for bit, through run,
imap and submit. Invalid parameters fail with their codes before anything is queued."""

from __future__ import annotations

import numpy as np
import pytest

import fastexec
from fastexec import emulator
from fastexec.aipp import CSC_YUV420SP_TO_RGB_JPEG, AippConfig, AippError, parse_aipp_config
from fastexec.emulator import model_file as mf
from fastexec.emulator.model_file import AippDef, ModelDef, TensorDef
from fastexec.emulator.samples import SAMPLES

STATIC, DYNAMIC = SAMPLES["aipp-static"], SAMPLES["aipp-dynamic"]
# The check the issue names: crop, mean and variance.
CROP_MEAN_VAR = AippConfig(input_format="YUV420SP_U8", src_image_size=(40, 30), crop=(4, 2, 32, 24),
                           dtc_pixel_mean=(124, 117, 104), pixel_var_reci=(0.0171, 0.0175, 0.0174))


def bits(a: np.ndarray) -> np.ndarray:
    return a.view(f"u{a.dtype.itemsize}")


def expected(model: ModelDef, x: np.ndarray, aipp=None) -> np.ndarray:
    """The reference for N raw rows: batches of the model's batch, the last zero-padded, trimmed."""
    b = model.max_batch
    out = []
    for start in range(0, x.shape[0], b):
        chunk = np.zeros((b,) + x.shape[1:], x.dtype)
        rows = min(b, x.shape[0] - start)
        chunk[:rows] = x[start:start + rows]
        out.append(mf.reference_outputs(model, [chunk], aipp=aipp)[0][:rows])
    return np.concatenate(out)


def frames(model: ModelDef, n: int, seed: int = 0) -> np.ndarray:
    shown = mf.visible_input(model, 0)
    return np.random.default_rng(seed).integers(0, 256, (n,) + shown.dims[1:], dtype=np.uint8)


@pytest.fixture
def model_of(device):
    models = []

    def make(source):
        m = fastexec.Model(emulator.sample_model(source) if source in SAMPLES else source, device=device)
        models.append(m)
        return m

    yield make
    for m in models:
        m.close()


# ---------------------------------------------------------------- static AIPP


@pytest.mark.parametrize("mode", ["overlap", "serial"])
def test_static_aipp_run_matches_reference(model_of, mode):
    x = frames(STATIC, 7)   # three full batches and a partial one
    with fastexec.Executor(model_of("aipp-static"), mode=mode) as ex:
        (y,) = ex.run(x)
    want = expected(STATIC, x)
    assert y.dtype == np.float16 and y.shape == (7, 3, 24, 32)
    assert np.array_equal(bits(y), bits(want))


def test_static_aipp_model_shows_the_raw_frames(model_of):
    m = model_of("aipp-static")
    (spec,) = m.inputs
    assert (spec.name, spec.shape, spec.dtype, spec.format, spec.nbytes) == ("images", (2, 45, 40, 1), np.uint8,
                                                                             "NHWC", 3600)
    assert m.aipp_input_index == -1
    a, d = m.aipp["images"], STATIC.aipp[0]
    assert a["mode"] == "static" and a["input_format"] == d.input_format
    assert (a["src_image_size_w"], a["src_image_size_h"]) == (40, 30)
    assert (a["load_start_pos_w"], a["load_start_pos_h"], a["crop_size_w"], a["crop_size_h"]) == (4, 2, 32, 20)
    assert (a["top_padding_size"], a["bottom_padding_size"]) == (2, 2)
    assert a["matrix"] == (256, 0, 359, 256, -88, -183, 256, 454, 0) and a["input_bias"] == (0, 128, 128)
    assert a["min_chn"][:3] == tuple(float(np.float32(v)) for v in (123.675, 116.28, 103.53))
    assert a["output"] == {"dims": (2, 3, 24, 32), "format": "NCHW", "dtype": np.dtype(np.float16)}
    with pytest.raises(ValueError, match="aipp= is for models with dynamic AIPP.*its AIPP is static"):
        fastexec.Executor(m, aipp=CROP_MEAN_VAR)


YUV_CSC = dict(csc_switch=True, matrix_r0c0=298, matrix_r0c1=0, matrix_r0c2=409, matrix_r1c0=298, matrix_r1c1=-100,
               matrix_r1c2=-208, matrix_r2c0=298, matrix_r2c1=516, matrix_r2c2=0, input_bias_0=16, input_bias_1=128,
               input_bias_2=128)
STATIC_MODELS = {
    "yuv-crop-pad-csc": (TensorDef("x", "float16", "NCHW", (3, 3, 10, 12)),
                         dict(input_format="YUV420SP_U8", src_image_size_w=16, src_image_size_h=12, crop=True,
                              load_start_pos_w=2, load_start_pos_h=4, crop_size_w=10, crop_size_h=6, padding=True,
                              left_padding_size=1, right_padding_size=1, top_padding_size=3, bottom_padding_size=1,
                              padding_value=0.25, mean_chn_0=16, min_chn_1=0.5, var_reci_chn_2=-2.0, **YUV_CSC)),
    "rgb-swap-nhwc-f32": (TensorDef("x", "float32", "NHWC", (2, 6, 8, 3)),
                          dict(input_format="RGB888_U8", src_image_size_w=8, src_image_size_h=6, rbuv_swap_switch=True,
                               mean_chn_0=1, mean_chn_1=2, mean_chn_2=3, var_reci_chn_0=0.00392156862745098)),
    "gray-crop": (TensorDef("x", "float16", "NCHW", (2, 1, 5, 7)),
                  dict(input_format="YUV400_U8", src_image_size_w=9, src_image_size_h=8, crop=True, load_start_pos_w=1,
                       load_start_pos_h=3, crop_size_w=7, crop_size_h=5, min_chn_0=127.5, var_reci_chn_0=0.0078125)),
}


@pytest.mark.parametrize("name", sorted(STATIC_MODELS))
def test_static_aipp_parameters_through_run_imap_submit(model_of, tmp_path, name):
    tensor, params = STATIC_MODELS[name]
    model = ModelDef(name, [tensor], [TensorDef("y", tensor.dtype, tensor.format, tensor.dims)], kernel="identity",
                     compute_us=1, aipp=[AippDef("x", aipp_mode="static", **params)])
    path = mf.write_model(tmp_path / f"{name}.om", model)
    b = tensor.dims[0]
    x = frames(model, 2 * b + 1, seed=len(name))
    want = expected(model, x)
    with fastexec.Executor(model_of(str(path)), depth=2) as ex:
        assert ex.inputs[0].shape == mf.visible_input(model, 0).dims
        (y,) = ex.run(x)
        assert np.array_equal(bits(y), bits(want))
        got = np.concatenate([o[0] for o in ex.imap(x[i:i + b] for i in range(0, len(x), b))])
        assert np.array_equal(bits(got), bits(want))
        t = ex.submit(x[:b])
        assert np.array_equal(bits(ex.result(t)[0]), bits(want[:b]))


# ---------------------------------------------------------------- dynamic AIPP


def test_dynamic_aipp_run_matches_reference(model_of):
    """The issue's check: crop, mean and variance through Executor.run, bit for bit."""
    x = frames(DYNAMIC, 5, seed=3)
    with fastexec.Executor(model_of("aipp-dynamic"), aipp=CROP_MEAN_VAR) as ex:
        assert ex.aipp == CROP_MEAN_VAR
        (y,) = ex.run(x)
    want = expected(DYNAMIC, x, CROP_MEAN_VAR)
    assert np.array_equal(bits(y), bits(want))
    assert not np.array_equal(bits(want), bits(expected(DYNAMIC, x, AippConfig(input_format="YUV420SP_U8",
                                                                                src_image_size=(40, 30),
                                                                                crop=(4, 2, 32, 24)))))


def test_dynamic_aipp_model_hides_the_parameter_input(model_of):
    m = model_of("aipp-dynamic")
    assert [(s.name, s.shape, s.dtype) for s in m.inputs] == [("images", (2, 3600), np.uint8)]
    assert m.aipp_input_index == 1
    assert m.aipp == {"images": {"mode": "dynamic", "max_src_image_size": 7200, "parameters_input": 1}}
    with pytest.raises(ValueError, match="has a dynamic AIPP input: pass its parameters as aipp="):
        fastexec.Executor(m)
    with pytest.raises(fastexec.FastexecError, match="dynamic AIPP"):
        m.execute([], [])


# Each dynamic parameter's effect: (name, config) run against the reference; none equals the plain one.
PLAIN = AippConfig(input_format="YUV420SP_U8", src_image_size=(32, 24))
DYNAMIC_VARIANTS = {
    "csc": AippConfig(input_format="YUV420SP_U8", src_image_size=(32, 24), csc=CSC_YUV420SP_TO_RGB_JPEG),
    "rbuv": AippConfig(input_format="YUV420SP_U8", src_image_size=(32, 24), rbuv_swap_switch=True),
    "src-size-crop": AippConfig(input_format="YUV420SP_U8", src_image_size=(40, 30), crop=(8, 6, 32, 24)),
    "padding": AippConfig(input_format="YUV420SP_U8", src_image_size=(30, 20), padding=(1, 3, 2, 0)),
    "mean": AippConfig(input_format="YUV420SP_U8", src_image_size=(32, 24), dtc_pixel_mean=(124, 117, 104)),
    "min": AippConfig(input_format="YUV420SP_U8", src_image_size=(32, 24), dtc_pixel_min=(123.675, 116.28, 103.53)),
    "var": AippConfig(input_format="YUV420SP_U8", src_image_size=(32, 24), pixel_var_reci=(0.0171, -2.5, 300.0)),
    "rgb": AippConfig(input_format="RGB888_U8", src_image_size=(32, 24)),
    "per-image": AippConfig(input_format="RGB888_U8", src_image_size=(36, 26), crop=[(0, 0, 32, 24), (4, 2, 32, 24)],
                            dtc_pixel_mean=[(0, 0, 0), (255, 128, 1)], pixel_var_reci=[(1, 1, 1), (0.5, 0.25, 2)]),
}


def test_dynamic_aipp_every_parameter_through_submit(model_of):
    """One executor (depth 1: every batch in the same slot), each batch its own parameters, and
    batches without any get the executor's back."""
    x = frames(DYNAMIC, 2, seed=9)
    plain = expected(DYNAMIC, x, PLAIN)
    with fastexec.Executor(model_of("aipp-dynamic"), aipp=PLAIN, depth=1) as ex:
        for name, cfg in DYNAMIC_VARIANTS.items():
            want = expected(DYNAMIC, x, cfg)
            assert not np.array_equal(bits(want), bits(plain)), f"{name} has no effect"
            (y,) = ex.result(ex.submit(x, aipp=cfg))
            assert np.array_equal(bits(y), bits(want)), name
            (y,) = ex.result(ex.submit(x))                      # the executor's parameters again
            assert np.array_equal(bits(y), bits(plain)), f"after {name}"


def test_dynamic_aipp_imap_and_interleaved_submits(model_of):
    x = frames(DYNAMIC, 6, seed=4)
    cfgs = [CROP_MEAN_VAR, DYNAMIC_VARIANTS["rgb"], None, DYNAMIC_VARIANTS["per-image"]]
    with fastexec.Executor(model_of("aipp-dynamic"), aipp=CROP_MEAN_VAR, instances=2, depth=2) as ex:
        got = np.concatenate([o[0] for o in ex.imap(x[i:i + 2] for i in range(0, 6, 2))])
        assert np.array_equal(bits(got), bits(expected(DYNAMIC, x, CROP_MEAN_VAR)))
        tickets = [ex.submit(x[:2], aipp=c) for c in cfgs]
        for t, c in zip(tickets, cfgs):
            want = expected(DYNAMIC, x[:2], c or CROP_MEAN_VAR)
            assert np.array_equal(bits(ex.result(t)[0]), bits(want))


# ---------------------------------------------------------------- invalid parameters

RANGE_CASES = [
    ("format", dict(input_format="NV12"), "unknown input_format 'NV12'"),
    ("width", dict(src_image_size=(1, 10)), "src_image_size width must be an integer in [2, 4096], got 1"),
    ("height", dict(src_image_size=(10, 4097)), "src_image_size height must be an integer in [1, 4096], got 4097"),
    ("csc", dict(csc={"matrix": (40000,) + (0,) * 8}), "csc matrix[0] must be an integer in [-32677, 32676]"),
    ("bias", dict(csc={"matrix": (0,) * 9, "input_bias": (0, 256, 0)}), "csc input_bias[1] must be an integer in [0, 255]"),
    ("crop", dict(crop=(4096, 0, 8, 8)), "crop start_w must be an integer in [0, 4095], got 4096"),
    ("crop-size", dict(crop=(0, 0, 0, 8)), "crop size_w must be an integer in [1, 4096], got 0"),
    ("padding", dict(padding=(0, 33, 0, 0)), "padding bottom must be an integer in [0, 32], got 33"),
    ("mean", dict(dtc_pixel_mean=(0, 256, 0)), "dtc_pixel_mean[1] must be an integer in [0, 255], got 256"),
    ("min", dict(dtc_pixel_min=(-1, 0, 0)), "dtc_pixel_min[0] must be a number in [0, 255], got -1"),
    ("var", dict(pixel_var_reci=(1, 1, 70000)), "pixel_var_reci[2] must be a number in [-65504, 65504], got 70000"),
    ("var-nan", dict(pixel_var_reci=(1, float("nan"), 1)), "pixel_var_reci[1] must be a number"),
    ("swap", dict(rbuv_swap_switch=2), "rbuv_swap_switch must be a bool"),
]


@pytest.mark.parametrize("case_id,changes,needle", RANGE_CASES, ids=[c[0] for c in RANGE_CASES])
def test_aipp_config_ranges(case_id, changes, needle):
    args = {"input_format": "YUV420SP_U8", "src_image_size": (32, 24), **changes}
    with pytest.raises(AippError) as exc:
        AippConfig(**args)
    assert needle in str(exc.value) and exc.value.code == 100000 and isinstance(exc.value, ValueError)


def test_invalid_dynamic_parameters_fail_before_anything_is_queued(model_of):
    m = model_of("aipp-dynamic")
    too_big = AippConfig(input_format="RGB888_U8", src_image_size=(60, 40))   # 2 x 7200 bytes > 7200
    with pytest.raises(AippError, match="exceed the model's max_src_image_size 7200"):
        fastexec.Executor(m, aipp=too_big)
    wrong_size = AippConfig(input_format="YUV420SP_U8", src_image_size=(40, 30))   # 40x30 out, the model takes 32x24
    with pytest.raises(fastexec.AclError) as exc:
        fastexec.Executor(m, aipp=wrong_size)
    assert (exc.value.code, exc.value.api) == (100000, "aclmdlSetInputAIPP")
    assert "must be equal to aipp output shape in the model" in exc.value.message
    with fastexec.Executor(m, aipp=CROP_MEAN_VAR, depth=1) as ex:
        x = frames(DYNAMIC, 2)
        before = ex.stats()["batches"]
        with pytest.raises(fastexec.AclError) as exc:
            ex.submit(x, aipp=wrong_size)
        assert exc.value.code == 100000
        with pytest.raises(fastexec.AclError, match="does not run XRGB8888_U8"):
            ex.submit(x, aipp=AippConfig(input_format="XRGB8888_U8", src_image_size=(32, 24)))
        with pytest.raises(AippError, match="gives 3 per-image values but the model's batch is 2"):
            ex.submit(x, aipp=AippConfig(input_format="RGB888_U8", src_image_size=(32, 24), crop=[None, None, None]))
        with pytest.raises(AippError, match="same AIPP output size"):
            ex.submit(x, aipp=AippConfig(input_format="RGB888_U8", src_image_size=(32, 24),
                                         crop=[None, (0, 0, 30, 24)]))
        with pytest.raises(TypeError, match="aipp must be a fastexec.AippConfig"):
            ex.submit(x, aipp={"input_format": "RGB888_U8"})
        assert ex.stats()["batches"] == before            # nothing was queued
        (y,) = ex.result(ex.submit(x))                    # and the slot still has the executor's parameters
        assert np.array_equal(bits(y), bits(expected(DYNAMIC, x, CROP_MEAN_VAR)))


# ---------------------------------------------------------------- ATC aipp.cfg files

ATC_CFG = """
# ais_bench --aipp_config / ATC --insert_op_conf
aipp_op {
    aipp_mode : dynamic
    related_input_rank : 0
    input_format : YUV420SP_U8
    src_image_size_w : 40
    src_image_size_h : 30
    crop : true
    load_start_pos_w : 4
    load_start_pos_h : 2
    crop_size_w : 32
    crop_size_h : 24
    csc_switch : true
    matrix_r0c0 : 256
    matrix_r0c2 : 359
    matrix_r1c0 : 256
    matrix_r1c1 : -88
    matrix_r1c2 : -183
    matrix_r2c0 : 256
    matrix_r2c1 : 454
    input_bias_1 : 128
    input_bias_2 : 128
    mean_chn_0 : 124
    mean_chn_1 : 117
    mean_chn_2 : 104
    var_reci_chn_0 : 0.0171
    var_reci_chn_1 : 0.0175
    var_reci_chn_2 : 0.0174
}
"""


def test_parse_atc_aipp_config():
    cfg = parse_aipp_config(ATC_CFG)
    assert cfg == AippConfig(input_format="YUV420SP_U8", src_image_size=(40, 30), csc=CSC_YUV420SP_TO_RGB_JPEG,
                             crop=(4, 2, 32, 24), dtc_pixel_mean=(124, 117, 104, 0),
                             pixel_var_reci=(0.0171, 0.0175, 0.0174, 1.0))


@pytest.mark.parametrize("text,needle", [
    ("aipp_op { input_format : YUV420SP_U8 src_image_size_w : 8 }", "src_image_size_w and src_image_size_h are required"),
    ("aipp_op { input_format : YUV420SP_U8 }\naipp_op { input_format : RGB888_U8 }", "2 aipp_op blocks"),
    ("aipp_op {\n input_format YUV420SP_U8 }", ":2: expected 'input_format : VALUE'"),
    ("aipp_op {\n input_format : YUV420SP_U8\n", "is not closed"),
    ("aipp_op {\n crop : yes\n input_format : YUV420SP_U8 src_image_size_w : 8 src_image_size_h : 8 }", ":2: crop takes true or false"),
    ("aipp_op {\n colour : red\n}", ":2: unknown aipp_op parameter 'colour'"),
    ("aipp_op { related_input_rank : 1 input_format : YUV420SP_U8 src_image_size_w : 8 src_image_size_h : 8 }", "related_input_rank must be 0"),
    ("aipp_op { input_format : YUV420SP_U8 src_image_size_w : 8 src_image_size_h : 8 mean_chn_0 : 300 }", "dtc_pixel_mean[0] must be an integer in [0, 255]"),
    ("", "no aipp_op block"),
])
def test_parse_atc_aipp_config_errors(text, needle):
    with pytest.raises(AippError) as exc:
        parse_aipp_config(text, "x.cfg")
    assert needle in str(exc.value), str(exc.value)


# ---------------------------------------------------------------- the command line


def cli(*args):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTEXEC_")}
    env.update({"FASTEXEC_BACKEND": "emulator", "FASTEXEC_EMU_FAST": "1"})
    return subprocess.run([sys.executable, "-m", "fastexec.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120)


def test_inspect_shows_aipp():
    import json

    proc = cli("inspect", "aipp-static")
    assert proc.returncode == 0, proc.stderr
    line = next(l for l in proc.stdout.splitlines() if l.startswith("aipp "))
    assert "static AIPP YUV420SP_U8 40x30; crop 32x20 at (4, 2); padding top 2 bottom 2" in line
    assert line.endswith("-> float16 NCHW (2, 3, 24, 32)")
    proc = cli("inspect", "aipp-dynamic", "--json")
    assert json.loads(proc.stdout)["aipp"] == {"images": {"mode": "dynamic", "max_src_image_size": 7200,
                                                          "parameters_input": 1}}
    d = json.loads(cli("inspect", "aipp-static", "--json").stdout)["aipp"]["images"]
    assert d["matrix"] == [256, 0, 359, 256, -88, -183, 256, 454, 0]
    assert d["output"] == {"dims": [2, 3, 24, 32], "format": "NCHW", "dtype": "float16"}


def test_run_and_bench_take_an_atc_aipp_config(tmp_path):
    import json

    cfg_path = tmp_path / "aipp.cfg"
    cfg_path.write_text(ATC_CFG)
    x = frames(DYNAMIC, 3, seed=5)
    np.save(tmp_path / "frames.npy", x)
    out = tmp_path / "out"
    proc = cli("run", "aipp-dynamic", "--input", tmp_path / "frames.npy", "--output", out, "--no-progress",
               "--aipp-config", cfg_path)
    assert proc.returncode == 0, proc.stderr
    (written,) = [p for p in out.rglob("*.npy")]
    assert np.array_equal(bits(np.load(written)), bits(expected(DYNAMIC, x, parse_aipp_config(ATC_CFG))))
    proc = cli("bench", "aipp-dynamic", "--aipp-config", cfg_path, "--batches", 30, "--warmup", 2,
               "--calibration-batches", 2, "--no-progress", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["settings"]["aipp_config"] == str(cfg_path) and r["batches"] == 30
    missing = cli("bench", "aipp-dynamic", "--batches", 5)
    assert missing.returncode == 2 and "give its parameters with --aipp-config FILE" in missing.stderr
    bad = tmp_path / "bad.cfg"
    bad.write_text("aipp_op {\n input_format : YUV420SP_U8\n src_image_size_w : 40\n src_image_size_h : 30\n"
                   " var_reci_chn_0 : 99999\n}\n")
    proc = cli("run", "aipp-dynamic", "--input", tmp_path / "frames.npy", "--output", tmp_path / "o2", "--aipp-config", bad)
    assert proc.returncode == 2 and "--aipp-config" in proc.stderr and "pixel_var_reci[0]" in proc.stderr
    proc = cli("bench", "aipp-static", "--aipp-config", cfg_path, "--batches", 5)
    assert proc.returncode == 2 and "has no dynamic AIPP input" in proc.stderr
