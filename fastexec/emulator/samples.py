"""The emulator's bundled sample models.

``SAMPLES`` maps each name to its :class:`ModelDef`; the files ``samples/<name>.om`` next to
this module are ``to_text(SAMPLES[name])`` and are regenerated with
``python -m fastexec.emulator.samples`` (``--check`` only compares). docs/model-format.md has
the table of samples and why each exists.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from .model_file import AippDef, ModelDef, TensorDef, to_text, write_model

SAMPLES_DIR = pathlib.Path(__file__).resolve().parent / "samples"

SAMPLES: dict[str, ModelDef] = {
    # ResNet50 INT8, batch 8, on an Atlas 300I Pro class card: 1140 us per batch. The kernel
    # reduces the 150528 pixels of each image to 1000 "logits", each the sum of a run of 150 or
    # 151 pixels times 0.0066 (about the mean pixel value: 0..254, well inside float16).
    "resnet50-int8": ModelDef(
        name="resnet50-int8",
        inputs=(TensorDef("data", "uint8", "NCHW", (8, 3, 224, 224)),),
        outputs=(TensorDef("logits", "float16", "ND", (8, 1000)),),
        kernel="segment_sum",
        scale=0.0066,
        bias=0.0,
        compute_us=1140.0,
    ),
    # 1,000,000-byte input and output with 1 ms of compute: under the emulator's slow-link
    # profile (1 GB/s) the H2D copy, the execute and the D2H copy each take about 1 ms.
    "balanced": ModelDef(
        name="balanced",
        inputs=(TensorDef("x", "float32", "ND", (4, 62500)),),
        outputs=(TensorDef("y", "float32", "ND", (4, 62500)),),
        kernel="affine",
        scale=2.0,
        bias=0.5,
        compute_us=1000.0,
    ),
    # 64 bytes each way and 5 us of compute: measures per-call overhead.
    "tiny": ModelDef(
        name="tiny",
        inputs=(TensorDef("x", "float32", "ND", (1, 16)),),
        outputs=(TensorDef("y", "float32", "ND", (1, 16)),),
        kernel="identity",
        compute_us=5.0,
    ),
    # Dynamic batch with gears 1, 2, 4, 8: 100 us + 20 us per sample.
    "dynamic-batch": ModelDef(
        name="dynamic-batch",
        inputs=(TensorDef("images", "float32", "NCHW", (-1, 3, 16, 16)),),
        outputs=(TensorDef("scores", "float32", "ND", (-1, 10)),),
        kernel="segment_sum",
        scale=1.0,
        bias=0.0,
        compute_us=100.0,
        per_sample_us=20.0,
        dynamic_batch=(1, 2, 4, 8),
    ),
    # Dynamic height/width: a batch of 2 RGB images at 16x16, 32x32 or 48x64, reduced to 8
    # features each; 50 us + 10 ns per input element (15, 61 or 184 us more by gear).
    "dynamic-hw": ModelDef(
        name="dynamic-hw",
        inputs=(TensorDef("image", "float32", "NCHW", (2, 3, -1, -1)),),
        outputs=(TensorDef("features", "float32", "ND", (2, 8)),),
        kernel="segment_sum",
        scale=0.25,
        bias=0.0,
        compute_us=50.0,
        per_element_us=0.01,
        dynamic_hw=((16, 16), (32, 32), (48, 64)),
    ),
    # Dynamic dims: token ids and a float16 mask; each gear gives both inputs a shape:
    # ids (1,16) + mask (1,4), ids (2,32) + mask (2,4), ids (4,64) + mask (4,4); 40 us +
    # 0.5 us per input element (50, 74 or 176 us by gear).
    "dynamic-dims": ModelDef(
        name="dynamic-dims",
        inputs=(
            TensorDef("ids", "int32", "ND", (-1, -1)),
            TensorDef("mask", "float16", "ND", (-1, 4)),
        ),
        outputs=(
            TensorDef("ids_out", "int32", "ND", (-1, -1)),
            TensorDef("mask_out", "float16", "ND", (-1, 4)),
        ),
        kernel="affine",
        scale=3.0,
        bias=-1.0,
        compute_us=40.0,
        per_element_us=0.5,
        dynamic_dims=((1, 16, 1), (2, 32, 2), (4, 64, 4)),
    ),
    # Fully dynamic shape: batch 1..8 and sequence 1..128, any shape inside the ranges; the
    # output has the input's shape. 30 us + 50 ns per element (up to 51 us more).
    "dynamic-shape": ModelDef(
        name="dynamic-shape",
        inputs=(TensorDef("tokens", "float32", "ND", (-1, -1)),),
        outputs=(TensorDef("hidden", "float32", "ND", (-1, -1)),),
        kernel="affine",
        scale=0.5,
        bias=1.0,
        compute_us=30.0,
        per_element_us=0.05,
        dynamic_shape=((1, 8), (1, 128)),
    ),
    # Two inputs and two outputs of different dtypes, for executors that match IO by name.
    "multi-io": ModelDef(
        name="multi-io",
        inputs=(
            TensorDef("a", "int32", "ND", (2, 64)),
            TensorDef("b", "float16", "ND", (2, 32)),
        ),
        outputs=(
            TensorDef("a_out", "int32", "ND", (2, 64)),
            TensorDef("b_out", "float16", "ND", (2, 32)),
        ),
        kernel="affine",
        scale=3.0,
        bias=-1.0,
        compute_us=50.0,
    ),
    # 5 ms of compute per batch of 16 and 2 KiB each way: compute-bound, so throughput scales
    # with the number of devices (one compute engine each) and the host's cost is negligible.
    "compute-bound": ModelDef(
        name="compute-bound",
        inputs=(TensorDef("x", "float32", "ND", (16, 32)),),
        outputs=(TensorDef("y", "float32", "ND", (16, 32)),),
        kernel="affine",
        scale=0.5,
        bias=1.0,
        compute_us=5000.0,
    ),
    # Static AIPP: NV12 (YUV420SP_U8) 40x30 camera frames in; the card crops 32x20 at (4, 2), pads
    # 2 rows above and below, converts to RGB (the JPEG matrix) and normalises each channel with
    # the ImageNet mean and 1/std. The kernel is the identity, so the output is the float16
    # tensor the AIPP hands to the model, every pixel of it.
    "aipp-static": ModelDef(
        name="aipp-static",
        inputs=(TensorDef("images", "float16", "NCHW", (2, 3, 24, 32)),),
        outputs=(TensorDef("pixels", "float16", "NCHW", (2, 3, 24, 32)),),
        kernel="identity",
        compute_us=150.0,
        aipp=(AippDef(
            "images", aipp_mode="static", input_format="YUV420SP_U8", src_image_size_w=40, src_image_size_h=30,
            crop=True, load_start_pos_w=4, load_start_pos_h=2, crop_size_w=32, crop_size_h=20,
            padding=True, top_padding_size=2, bottom_padding_size=2,
            csc_switch=True, matrix_r0c0=256, matrix_r0c1=0, matrix_r0c2=359, matrix_r1c0=256, matrix_r1c1=-88,
            matrix_r1c2=-183, matrix_r2c0=256, matrix_r2c1=454, matrix_r2c2=0, input_bias_1=128, input_bias_2=128,
            min_chn_0=123.675, min_chn_1=116.28, min_chn_2=103.53,
            var_reci_chn_0=0.0171247538, var_reci_chn_1=0.0175070028, var_reci_chn_2=0.0174291939,
        ),),
    ),
    # Dynamic AIPP: the same float16 tensor to the kernel, the parameters set at run time
    # (aclmdlSetInputAIPP through the hidden ascend_dynamic_aipp_data input). Each of the 2
    # images may be up to 3600 bytes (RGB888 40x30).
    "aipp-dynamic": ModelDef(
        name="aipp-dynamic",
        inputs=(TensorDef("images", "float16", "NCHW", (2, 3, 24, 32)),),
        outputs=(TensorDef("pixels", "float16", "NCHW", (2, 3, 24, 32)),),
        kernel="identity",
        compute_us=150.0,
        aipp=(AippDef("images", aipp_mode="dynamic", max_src_image_size=7200),),
    ),
}


def sample_path(name: str) -> pathlib.Path:
    """Path of the bundled file of sample ``name``."""
    if name not in SAMPLES:
        raise ValueError(f"unknown sample model {name!r}: available are {', '.join(sorted(SAMPLES))}")
    return SAMPLES_DIR / f"{name}.om"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fastexec.emulator.samples",
        description="Write the bundled sample model files (samples/<name>.om) from SAMPLES.",
    )
    parser.add_argument(
        "--check", action="store_true", help="only report files that differ from SAMPLES; exit 1 if any"
    )
    args = parser.parse_args(argv)
    stale = []
    for name, model in SAMPLES.items():
        path = sample_path(name)
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == to_text(model):
            continue
        stale.append(name)
        if args.check:
            print(f"{path}: out of date", file=sys.stderr)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_model(path, model)
            print(f"wrote {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
