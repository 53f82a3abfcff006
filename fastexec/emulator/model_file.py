"""The emulator's model file (format version 1): definitions, writer, reader and numpy
reference kernels.

The format is specified in docs/model-format.md. The C parser and kernels
(fastexec/emulator/src/model_file.c) apply the same rules; the validation rules live here once
(the ``_check_*`` helpers), used both by :meth:`ModelDef.validate` and by :func:`parse_model`,
and :func:`reference_outputs` is bit-exact with the C kernels.

Importing this module is cheap: numpy is imported only inside the functions that need it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import pathlib
import re
from typing import Any, NamedTuple, Sequence

__all__ = [
    "AIPP_PARAMS",
    "AippDef",
    "DTYPES",
    "FORMATS",
    "FORMAT_VERSION",
    "KERNELS",
    "MAGIC",
    "ModelDef",
    "TensorDef",
    "aipp_data_size",
    "parse_model",
    "read_model",
    "reference_outputs",
    "to_text",
    "visible_input",
    "write_model",
]

MAGIC = "fastexec-emulator-model"
FORMAT_VERSION = 1
MAX_IO = 32
MAX_DIMS = 128
MAX_GEARS = 128
MAX_DYN_DIMS = 64  # -1 dims over all inputs (dynamic_hw / dynamic_dims / dynamic_shape)
MAX_NAME_LEN = 127
MAX_LINE_BYTES = 4096
TENSOR_BYTES_LIMIT = 1 << 40
RESERVED_TENSOR_NAME = "ascend_mbatch_shape_data"
RESERVED_AIPP_NAME = "ascend_dynamic_aipp_data"
AIPP_HEADER_BYTES = 64
AIPP_BATCH_BYTES = 96

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1
_SIZE_MAX = _UINT64_MAX  # LP64


class DTypeInfo(NamedTuple):
    acl: int  # aclDataType value
    size: int  # bytes per element (aclDataTypeSize)
    kind: str  # 'f' float, 'i' signed int, 'u' unsigned int, 'b' bool


DTYPES: dict[str, DTypeInfo] = {
    "float32": DTypeInfo(0, 4, "f"),
    "float16": DTypeInfo(1, 2, "f"),
    "float64": DTypeInfo(11, 8, "f"),
    "int8": DTypeInfo(2, 1, "i"),
    "int16": DTypeInfo(6, 2, "i"),
    "int32": DTypeInfo(3, 4, "i"),
    "int64": DTypeInfo(9, 8, "i"),
    "uint8": DTypeInfo(4, 1, "u"),
    "uint16": DTypeInfo(7, 2, "u"),
    "uint32": DTypeInfo(8, 4, "u"),
    "uint64": DTypeInfo(10, 8, "u"),
    "bool": DTypeInfo(12, 1, "b"),
}

# aclFormat values, by the enum name without its ACL_FORMAT_ prefix.
FORMATS: dict[str, int] = {
    "NCHW": 0,
    "NHWC": 1,
    "ND": 2,
    "NC1HWC0": 3,
    "FRACTAL_Z": 4,
    "NC1HWC0_C04": 12,
    "HWCN": 16,
    "NDHWC": 27,
    "FRACTAL_NZ": 29,
    "NCDHW": 30,
    "NDC1HWC0": 32,
    "FRACTAL_Z_3D": 33,
    "NC": 35,
    "NCL": 47,
}

KERNELS = ("identity", "affine", "segment_sum")

_KEYS = (
    "name",
    "input",
    "output",
    "kernel",
    "compute_us",
    "per_sample_us",
    "dynamic_batch",
    "dynamic_hw",
    "dynamic_dims",
    "dynamic_shape",
    "per_element_us",
    "workspace_bytes",
    "weight_bytes",
    "aipp",
)

_INT_RE = re.compile(r"-?[0-9]+")
_DECIMAL_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MODEL_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,127}")
_SEPARATORS_RE = re.compile(r"[ \t\r]+")
PROFILE_KEYS = ("dynamic_batch", "dynamic_hw", "dynamic_dims", "dynamic_shape")
# The height and width axes of a dynamic_hw input, by its format.
HW_AXES = {"NCHW": (2, 3), "NHWC": (1, 2)}


# ----------------------------------------------------------------------------------------------
# Definitions
# ----------------------------------------------------------------------------------------------


def _as_int(value: Any) -> Any:
    """Integral numbers (numpy's included) as int; anything else is left for validate()."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return value


def _as_float(value: Any) -> Any:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def _as_tuple(value: Any, item=lambda v: v) -> Any:
    if isinstance(value, (str, bytes)):
        return value
    try:
        return tuple(item(v) for v in value)
    except TypeError:
        return value


@dataclasses.dataclass(frozen=True)
class TensorDef:
    """One model input or output. ``dims[0]`` is the batch axis (-1 for a dynamic batch)."""

    name: str
    dtype: str
    format: str
    dims: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "dims", _as_tuple(self.dims, _as_int))

    @property
    def elem_size(self) -> int:
        return DTYPES[self.dtype].size

    @property
    def sample_elems(self) -> int:
        """Elements of one sample: the product of ``dims[1:]`` (a dynamic dim there counts as 1)."""
        return math.prod(abs(d) for d in self.dims[1:])

    @property
    def dynamic_axes(self) -> tuple[int, ...]:
        """Axes whose dim is -1."""
        return tuple(i for i, d in enumerate(self.dims) if d == -1)

    def nbytes(self, batch: int) -> int:
        """Bytes of this tensor holding ``batch`` samples."""
        return batch * self.sample_elems * self.elem_size


class AippParam(NamedTuple):
    name: str  # the ATC aipp_op name, and the AippDef field
    kind: str  # 'mode', 'format', 'bool', 'int', 'dec'
    lo: float
    hi: float
    range: str  # as messages show it
    default: Any


def _aipp_params() -> tuple[AippParam, ...]:
    out = [AippParam("aipp_mode", "mode", 0, 0, "", None), AippParam("input_format", "format", 0, 0, "", None),
           AippParam("src_image_size_w", "int", 1, 4096, "[1, 4096]", 0),
           AippParam("src_image_size_h", "int", 1, 4096, "[1, 4096]", 0),
           AippParam("crop", "bool", 0, 1, "", False),
           AippParam("load_start_pos_w", "int", 0, 4095, "[0, 4095]", 0),
           AippParam("load_start_pos_h", "int", 0, 4095, "[0, 4095]", 0),
           AippParam("crop_size_w", "int", 1, 4096, "[1, 4096]", 0),
           AippParam("crop_size_h", "int", 1, 4096, "[1, 4096]", 0),
           AippParam("padding", "bool", 0, 1, "", False)]
    out += [AippParam(f"{side}_padding_size", "int", 0, 32, "[0, 32]", 0) for side in ("left", "right", "top", "bottom")]
    out += [AippParam("padding_value", "dec", -65504, 65504, "[-65504, 65504]", 0.0)]
    out += [AippParam(n, "bool", 0, 1, "", False) for n in ("csc_switch", "rbuv_swap_switch", "ax_swap_switch")]
    out += [AippParam(f"matrix_r{r}c{c}", "int", -32677, 32676, "[-32677, 32676]", 0) for r in range(3) for c in range(3)]
    out += [AippParam(f"{p}_{i}", "int", 0, 255, "[0, 255]", 0) for p in ("output_bias", "input_bias") for i in range(3)]
    out += [AippParam(f"mean_chn_{i}", "int", 0, 255, "[0, 255]", 0) for i in range(4)]
    out += [AippParam(f"min_chn_{i}", "dec", 0, 255, "[0, 255]", 0.0) for i in range(4)]
    out += [AippParam(f"var_reci_chn_{i}", "dec", -65504, 65504, "[-65504, 65504]", 1.0) for i in range(4)]
    out += [AippParam("max_src_image_size", "int", 1, TENSOR_BYTES_LIMIT, f"[1, {TENSOR_BYTES_LIMIT}]", 0)]
    return tuple(out)


# The `aipp` parameters, in the order the C parser's table lists them.
AIPP_PARAMS: tuple[AippParam, ...] = _aipp_params()
# Input formats the emulator runs: name -> (aclAippInputFormat, channels after AIPP).
AIPP_FORMATS: dict[str, tuple[int, int]] = {"YUV420SP_U8": (1, 3), "RGB888_U8": (3, 3), "YUV400_U8": (4, 1)}


def _aipp_field_defaults():
    return {p.name: p.default for p in AIPP_PARAMS}


AippDef = dataclasses.make_dataclass(
    "AippDef",
    [("input", str)] + [(p.name, Any, dataclasses.field(default=p.default)) for p in AIPP_PARAMS],
    frozen=True,
    namespace={"__doc__": "The AIPP of one model input (its `aipp` lines): `input` names the input, every other "
                          "field is the ATC aipp_op parameter of the same name (defaults as ATC's)."},
)
AippDef.__module__ = __name__
_AIPP_BY_NAME = {p.name: p for p in AIPP_PARAMS}


@dataclasses.dataclass(frozen=True)
class ModelDef:
    """A model of format version 1. Sequences are stored as tuples, numbers as floats."""

    name: str
    inputs: tuple[TensorDef, ...]
    outputs: tuple[TensorDef, ...]
    kernel: str = "identity"
    scale: float = 1.0
    bias: float = 0.0
    compute_us: float = 0.0
    per_sample_us: float = 0.0
    dynamic_batch: tuple[int, ...] = ()
    workspace_bytes: int = 0
    weight_bytes: int = 0
    aipp: tuple = ()  # AippDef, one per AIPP input
    dynamic_hw: tuple[tuple[int, int], ...] = ()  # (height, width) gears
    dynamic_dims: tuple[tuple[int, ...], ...] = ()  # gears: a value for every -1 dim of the inputs, in order
    dynamic_shape: tuple[tuple[int, int], ...] = ()  # a (min, max) range for every -1 dim of the inputs
    per_element_us: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "aipp", _as_tuple(self.aipp))
        object.__setattr__(self, "inputs", _as_tuple(self.inputs))
        object.__setattr__(self, "outputs", _as_tuple(self.outputs))
        object.__setattr__(self, "dynamic_batch", _as_tuple(self.dynamic_batch, _as_int))
        for field in ("dynamic_hw", "dynamic_dims", "dynamic_shape"):
            object.__setattr__(self, field, _as_tuple(getattr(self, field), lambda g: _as_tuple(g, _as_int)))
        for field in ("scale", "bias", "compute_us", "per_sample_us", "per_element_us"):
            object.__setattr__(self, field, _as_float(getattr(self, field)))
        for field in ("workspace_bytes", "weight_bytes"):
            object.__setattr__(self, field, _as_int(getattr(self, field)))

    def validate(self) -> "ModelDef":
        """Apply every rule of the format; raise ValueError naming the problem. Returns self."""
        where = _Where(None)
        p = where.prefix()
        _check_model_name(self.name, p)
        for kind, tensors in (("input", self.inputs), ("output", self.outputs)):
            if not isinstance(tensors, tuple):
                raise ValueError(f"{p}{kind}s must be a sequence of TensorDef")
            for k, td in enumerate(tensors):
                _check_tensor(kind, k, td, tensors[:k], p, where)
        _check_kernel(self.kernel, self.scale, self.bias, p)
        _check_time("compute_us", self.compute_us, None, p)
        _check_time("per_sample_us", self.per_sample_us, None, p)
        _check_time("per_element_us", self.per_element_us, None, p)
        if not isinstance(self.dynamic_batch, tuple):
            raise ValueError(f"{p}dynamic_batch must be a sequence of integers")
        if self.dynamic_batch:
            _check_gears(self.dynamic_batch, p)
        for key in PROFILE_KEYS[1:]:
            value = getattr(self, key)
            if not isinstance(value, tuple) or not all(isinstance(g, tuple) for g in value):
                raise ValueError(f"{p}{key} must be a sequence of integer sequences")
            if value:
                _parse_profile(key, _profile_token(key, value), p)
        given = [k for k in PROFILE_KEYS if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"{p}{given[1]}: a model declares at most one of {', '.join(PROFILE_KEYS)} (it also has {given[0]})")
        _check_bytes("workspace_bytes", self.workspace_bytes, None, p)
        _check_bytes("weight_bytes", self.weight_bytes, None, p)
        _check_aipp_defs(self, p)
        _check_model(self, where)
        return self

    def aipp_of(self, name: str):
        """The AippDef of input `name`, or None."""
        return next((a for a in self.aipp if a.input == name), None)

    @property
    def is_dynamic(self) -> bool:
        """A dynamic-batch model (the other dynamic kinds: :attr:`profile`)."""
        return bool(self.dynamic_batch)

    @property
    def profile(self) -> str | None:
        """Which dynamic profile the model declares: one of PROFILE_KEYS, or None (static)."""
        return next((k for k in PROFILE_KEYS if getattr(self, k)), None)

    @property
    def max_batch(self) -> int:
        """dims[0] of a static model; the largest gear of a dynamic-batch one; for the other
        dynamic kinds, dims[0] of input 0 at its largest shape."""
        if self.dynamic_batch:
            return self.dynamic_batch[-1]
        if self.profile is None:
            return self.inputs[0].dims[0]
        return max(ins[0][0] for ins, _ in self.profile_shapes())

    @property
    def per_element_ns(self) -> int:
        return _us_to_ns(self.per_element_us)

    def dyn_values(self) -> list[tuple[int, ...]]:
        """Every gear as the values of the inputs' -1 dims in order; for dynamic_shape, the
        lower and the upper bounds of the ranges. Empty for a static model."""
        n_dyn = sum(len(t.dynamic_axes) for t in self.inputs)
        if self.dynamic_batch:
            return [(g,) * n_dyn for g in self.dynamic_batch]
        if self.dynamic_hw:
            return [tuple(v for t in self.inputs for v in (g if t.dynamic_axes else ())) for g in self.dynamic_hw]
        if self.dynamic_dims:
            return list(self.dynamic_dims)
        if self.dynamic_shape:
            return [tuple(r[0] for r in self.dynamic_shape), tuple(r[1] for r in self.dynamic_shape)]
        return []

    def shapes_of(self, values: Sequence[int]) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
        """The input and output shapes when the inputs' -1 dims take ``values`` (in order).
        Output k's -1 dim at axis j is input k's dim at axis j."""
        it = iter(values)
        ins = [tuple(next(it) if d == -1 else d for d in t.dims) for t in self.inputs]
        outs = [tuple(ins[k][j] if d == -1 else d for j, d in enumerate(t.dims)) for k, t in enumerate(self.outputs)]
        return ins, outs

    def profile_shapes(self) -> list[tuple[list[tuple[int, ...]], list[tuple[int, ...]]]]:
        """:meth:`shapes_of` for every entry of :meth:`dyn_values` (the static shapes if none)."""
        return [self.shapes_of(v) for v in (self.dyn_values() or [()])]

    def exec_ns(self, input_shapes: Sequence[Sequence[int]]) -> int:
        """Modelled time of one execution over inputs of these shapes:
        compute_ns + per_sample_ns x dims[0] of input 0 + per_element_ns x all input elements."""
        return (self.compute_ns + self.per_sample_ns * input_shapes[0][0]
                + self.per_element_ns * sum(math.prod(s) for s in input_shapes))

    def match_shapes(self, input_shapes: Sequence[Sequence[int]]) -> tuple[int, ...]:
        """The values of the inputs' -1 dims for inputs of these shapes; ValueError naming the
        input, the given shape and the allowed gears or ranges when they fit no gear/range."""
        values: list[int] = []
        for t, shape in zip(self.inputs, input_shapes):
            shape = tuple(int(d) for d in shape)
            if len(shape) != len(t.dims) or any(d != -1 and d != g for d, g in zip(t.dims, shape)):
                raise ValueError(f"input '{t.name}' has shape {shape}; the model takes {_dims_text(t.dims)}"
                                 f"{self.allowed_text(t)}")
            values.extend(shape[i] for i in t.dynamic_axes)
        v = tuple(values)
        if self.dynamic_shape:
            for (lo, hi), x, (t, axis) in zip(self.dynamic_shape, v, self._dyn_slots()):
                if not lo <= x <= hi:
                    raise ValueError(f"input '{t.name}' has shape {tuple(input_shapes[self.inputs.index(t)])}: "
                                     f"dims[{axis}]={x} is outside its range {lo}..{hi}{self.allowed_text(t)}")
            return v
        gears = self.dyn_values()
        if gears and v not in gears:
            bad = next((t for t, s in zip(self.inputs, input_shapes) if t.dynamic_axes), self.inputs[0])
            shown = ", ".join(f"'{t.name}' {tuple(s)}" for t, s in zip(self.inputs, input_shapes) if t.dynamic_axes)
            raise ValueError(f"input '{bad.name}': shapes {shown} are no gear of model '{self.name}'{self.allowed_text(None)}")
        return v

    def _dyn_slots(self) -> list[tuple[TensorDef, int]]:
        return [(t, a) for t in self.inputs for a in t.dynamic_axes]

    def allowed_text(self, tensor: TensorDef | None) -> str:
        """': gears are ...' / ': ranges are ...' for error messages ('' for a static model)."""
        if self.dynamic_shape:
            rng = ", ".join(f"{t.name}[{a}] in {lo}..{hi}" for (t, a), (lo, hi) in zip(self._dyn_slots(), self.dynamic_shape))
            return f" (ranges: {rng})"
        if not self.dyn_values():
            return ""
        gears = []
        for ins, _ in self.profile_shapes():
            gears.append(" ".join(f"{t.name}:{_dims_text(s)}" for t, s in zip(self.inputs, ins) if t.dynamic_axes))
        return f" (gears: {'; '.join(gears)})"

    @property
    def compute_ns(self) -> int:
        return _us_to_ns(self.compute_us)

    @property
    def per_sample_ns(self) -> int:
        return _us_to_ns(self.per_sample_us)


def _dims_text(dims: Sequence[int]) -> str:
    return ",".join(str(d) for d in dims)


# ----------------------------------------------------------------------------------------------
# Rules (shared by ModelDef.validate and parse_model)
# ----------------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    """'text' for messages, escaped and cut exactly like quote() in model_file.c."""
    data = text.encode("utf-8", "surrogateescape") if _encodable(text) else text.encode(
        "utf-8", "surrogatepass"
    )
    shown = data[:40]
    out = []
    for c in shown:
        if 0x20 <= c < 0x7F and c not in (0x27, 0x5C):
            out.append(chr(c))
        else:
            out.append(f"\\x{c:02x}")
    return "'" + "".join(out) + ("..." if len(data) > 40 else "") + "'"


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def _byte_len(text: str) -> int:
    if _encodable(text):
        return len(text.encode("utf-8", "surrogateescape"))
    return len(text.encode("utf-8", "surrogatepass"))


def _fmt_float(x: float) -> str:
    """Shortest text that parses back to exactly x (integers without '.0')."""
    x = float(x)
    if x.is_integer() and abs(x) < 2.0**53 and not (x == 0.0 and math.copysign(1.0, x) < 0):
        return str(int(x))
    return repr(x)


def _us_to_ns(us: float) -> int:
    """Microseconds -> nanoseconds as model_file.c computes it: floor(us * 1000 + 0.5) in double."""
    ns = float(us) * 1000.0 + 0.5
    if not ns < 2.0**63:
        raise ValueError(f"{us!r} us is too large: at most 9223372036854775807 ns")
    return int(ns)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _Where:
    """Message prefixes: 'line N: ' / 'model file: ' when parsing text, 'model: ' otherwise."""

    def __init__(self, lines: dict[str, Any] | None) -> None:
        self.lines = lines

    def prefix(self, key: str | None = None) -> str:
        if self.lines is None:
            return "model: "
        line = self.lines.get(key) if key else None
        return f"line {line}: " if line else "model file: "

    def tensor(self, kind: str, k: int) -> str:
        if self.lines is None:
            return "model: "
        return f"line {self.lines[kind][k]}: "

    def ref(self, kind: str, k: int) -> str:
        """How a message points back at an earlier tensor."""
        if self.lines is None:
            return f"{kind} {k}"
        return f"line {self.lines[kind][k]}"


def _check_model_name(name: Any, p: str) -> None:
    if not isinstance(name, str) or not _MODEL_NAME_RE.fullmatch(name):
        shown = _quote(name) if isinstance(name, str) else repr(name)
        raise ValueError(f"{p}bad model name {shown}: expected 1 to 127 characters from [A-Za-z0-9._-]")


def _check_tensor(kind: str, k: int, td: Any, earlier: Sequence[TensorDef], p: str, where: _Where) -> None:
    if not isinstance(td, TensorDef):
        raise ValueError(f"{p}{kind} {k} must be a TensorDef, got {type(td).__name__}")
    _check_tensor_name(kind, k, td.name, earlier, p, where)
    _check_tensor_dtype(kind, td.name, td.dtype, p)
    _check_tensor_format(kind, td.name, td.format, p)
    _check_tensor_dims(kind, td, p)


def _check_tensor_name(kind: str, k: int, name: Any, earlier: Sequence[TensorDef], p: str, where: _Where) -> None:
    if k >= MAX_IO:
        raise ValueError(f"{p}too many {kind}s: expected at most {MAX_IO}")
    if (
        not isinstance(name, str)
        or not 1 <= len(name) <= MAX_NAME_LEN
        or any(not 0x20 < ord(c) < 0x7F for c in name)
        or "#" in name
    ):
        shown = _quote(name) if isinstance(name, str) else repr(name)
        hint = " other than '#'" if isinstance(name, str) and "#" in name else ""
        raise ValueError(f"{p}bad {kind} name {shown}: expected 1 to 127 printable ASCII characters{hint}")
    if name == RESERVED_TENSOR_NAME:
        raise ValueError(f"{p}{kind} name '{RESERVED_TENSOR_NAME}' is reserved for the runtime's dynamic-batch input")
    if name == RESERVED_AIPP_NAME:
        raise ValueError(f"{p}{kind} name '{RESERVED_AIPP_NAME}' is reserved for the runtime's dynamic AIPP input")
    for j, other in enumerate(earlier):
        if other.name == name:
            how = f"on {where.ref(kind, j)}" if where.lines is not None else f"by {kind} {j}"
            raise ValueError(f"{p}duplicate {kind} name {_quote(name)}: already used {how}")


def _check_tensor_dtype(kind: str, name: str, dtype: Any, p: str) -> None:
    if dtype not in DTYPES:
        shown = _quote(dtype) if isinstance(dtype, str) else repr(dtype)
        raise ValueError(f"{p}{kind} '{name}': unknown dtype {shown}: expected one of {', '.join(DTYPES)}")


def _check_tensor_format(kind: str, name: str, fmt: Any, p: str) -> None:
    if fmt not in FORMATS:
        shown = _quote(fmt) if isinstance(fmt, str) else repr(fmt)
        raise ValueError(f"{p}{kind} '{name}': unknown format {shown}: expected one of {', '.join(FORMATS)}")


def _check_tensor_dims(kind: str, td: TensorDef, p: str) -> None:
    name, dims = td.name, td.dims
    if not isinstance(dims, tuple) or not dims:
        raise ValueError(f"{p}{kind} '{name}': dims must be a non-empty sequence of integers, got {dims!r}")
    for i, d in enumerate(dims):
        if i == MAX_DIMS:
            raise ValueError(f"{p}{kind} '{name}': too many dims: expected at most {MAX_DIMS}")
        _check_dim(kind, name, i, d, p)
    if td.sample_elems * td.elem_size > TENSOR_BYTES_LIMIT:
        raise ValueError(
            f"{p}{kind} '{name}' is too large: one sample holds more than {TENSOR_BYTES_LIMIT} bytes "
            "(the limit is 2^40 bytes per tensor)"
        )


def _check_dim(kind: str, name: str, i: int, d: Any, p: str) -> None:
    if not _is_int(d):
        raise ValueError(f"{p}{kind} '{name}': dims[{i}] must be an integer, got {d!r}")
    if not _INT64_MIN <= d <= _INT64_MAX:
        raise ValueError(f"{p}{kind} '{name}': dims[{i}] is out of the int64 range")
    if i == 0 and d < 1 and d != -1:
        raise ValueError(f"{p}{kind} '{name}': dims[0] must be >= 1, or -1 for a dynamic batch, got {d}")
    if i > 0 and d < 1 and d != -1:
        raise ValueError(f"{p}{kind} '{name}': dims[{i}] must be >= 1, or -1 for a dynamic dim, got {d}")


def _check_kernel_name(kernel: Any, p: str) -> None:
    if kernel not in KERNELS:
        shown = _quote(kernel) if isinstance(kernel, str) else repr(kernel)
        raise ValueError(f"{p}unknown kernel {shown}: expected identity, affine or segment_sum")


def _check_kernel(kernel: Any, scale: Any, bias: Any, p: str) -> None:
    _check_kernel_name(kernel, p)
    for pname, v in (("scale", scale), ("bias", bias)):
        if not _is_real(v) or not math.isfinite(v):
            raise ValueError(f"{p}value for kernel parameter '{pname}' must be a finite number, got {v!r}")
    if kernel == "identity" and (scale != 1.0 or bias != 0.0):
        raise ValueError(
            f"{p}kernel 'identity' takes no parameters, got scale={_fmt_float(scale)} bias={_fmt_float(bias)}"
        )


def _check_time(key: str, us: Any, token: str | None, p: str) -> None:
    if not _is_real(us) or not math.isfinite(us):
        raise ValueError(f"{p}{key} must be a finite number of microseconds >= 0, got {us!r}")
    shown = _quote(token if token is not None else _fmt_float(us))
    if us < 0:
        raise ValueError(f"{p}{key} must be >= 0, got {shown}")
    if not float(us) * 1000.0 + 0.5 < 2.0**63:
        raise ValueError(f"{p}{key} {shown} is too large: at most 9223372036854775807 ns")


def _check_bytes(key: str, v: Any, token: str | None, p: str) -> None:
    if not _is_int(v):
        raise ValueError(f"{p}{key} must be an integer >= 0, got {v!r}")
    shown = _quote(token if token is not None else str(v))
    if v < 0:
        raise ValueError(f"{p}{key} must be >= 0, got {shown}")
    if v > _SIZE_MAX:
        raise ValueError(f"{p}{key} {shown} is out of range: at most {_SIZE_MAX}")


def _check_gears(gears: tuple, p: str) -> None:
    for i, g in enumerate(gears):
        if i == MAX_GEARS:
            raise ValueError(f"{p}too many dynamic_batch gears: expected at most {MAX_GEARS}")
        _check_gear(i, g, gears[i - 1] if i else None, str(g), p)


def _check_gear(i: int, g: Any, previous: int | None, token: str, p: str) -> None:
    if not _is_int(g):
        raise ValueError(f"{p}dynamic_batch gear {i} must be an integer, got {g!r}")
    if g < 1 or token.startswith("-"):
        raise ValueError(f"{p}dynamic_batch gear {i} must be >= 1, got {_quote(token)}")
    if g > _UINT64_MAX:
        raise ValueError(f"{p}dynamic_batch gear {i} is out of the uint64 range")
    if previous is not None and g <= previous:
        raise ValueError(f"{p}dynamic_batch gears must be strictly ascending: gear {i} ({g}) follows {previous}")


def _aipp_text(pp: AippParam, v: Any) -> str:
    """A parameter value as the model file writes it."""
    if pp.kind == "bool":
        return "true" if v else "false"
    if pp.kind == "dec":
        return _fmt_float(v)
    return str(v)


def _parse_aipp_value(pp: AippParam, tok: str, p: str) -> Any:
    """The value of one `aipp` line, checked as model_file.c's handle_aipp() checks it."""
    if pp.kind == "mode":
        if tok not in ("static", "dynamic"):
            raise ValueError(f"{p}aipp parameter 'aipp_mode' takes static or dynamic, got {_quote(tok)}")
        return tok
    if pp.kind == "format":
        if tok not in AIPP_FORMATS:
            raise ValueError(f"{p}aipp parameter 'input_format' takes YUV420SP_U8, RGB888_U8 or YUV400_U8 (the formats "
                             f"the emulator runs), got {_quote(tok)}")
        return tok
    if pp.kind == "bool":
        if tok not in ("true", "false"):
            raise ValueError(f"{p}aipp parameter '{pp.name}' takes true or false, got {_quote(tok)}")
        return tok == "true"
    if pp.kind == "int":
        v = int(tok) if _INT_RE.fullmatch(tok) else None
        if v is None or not pp.lo <= v <= pp.hi:
            raise ValueError(f"{p}aipp parameter '{pp.name}' must be an integer in {pp.range}, got {_quote(tok)}")
        return v
    v = _parse_decimal(tok)
    if v is None or not pp.lo <= v <= pp.hi:
        raise ValueError(f"{p}aipp parameter '{pp.name}' must be a decimal number in {pp.range}, got {_quote(tok)}")
    return v


def _check_aipp_defs(m: "ModelDef", p: str) -> None:
    """ModelDef.validate(): each AippDef names an input once and holds values a file could."""
    names = [t.name for t in m.inputs] if isinstance(m.inputs, tuple) else []
    seen: set[str] = set()
    for a in m.aipp:
        if not isinstance(a, AippDef):
            raise ValueError(f"{p}aipp entries must be AippDef, got {type(a).__name__}")
        if a.input not in names:
            raise ValueError(f"{p}aipp: no input named {_quote(str(a.input))}")
        if a.input in seen:
            raise ValueError(f"{p}aipp: input '{a.input}' has two AippDef entries")
        seen.add(a.input)
        for pp in AIPP_PARAMS:
            v = getattr(a, pp.name)
            if v == pp.default and type(v) is type(pp.default):
                continue
            ok = {"mode": v in ("static", "dynamic"), "format": v in AIPP_FORMATS, "bool": isinstance(v, bool),
                  "int": _is_int(v), "dec": _is_real(v) and math.isfinite(v)}[pp.kind]
            if not ok:
                raise ValueError(f"{p}aipp parameter '{pp.name}' of input '{a.input}' cannot be {v!r}")
            if pp.kind in ("int", "dec"):
                _parse_aipp_value(pp, _aipp_text(pp, v), p)


def _check_aipp_model(m: "ModelDef", where: _Where) -> None:
    """Whole-model AIPP rules (model_file.c's finish_aipp()), input by input."""
    dynamic_input = None
    for t in m.inputs:
        a = m.aipp_of(t.name)
        if a is None:
            continue
        if where.lines is None:
            p = "model: "
        else:
            seen = where.lines["aipp"][t.name]
            p = f"line {seen.get('aipp_mode', seen['first'])}: "
        n = t.name
        if a.aipp_mode is None:
            raise ValueError(f"{p}aipp for input '{n}': aipp_mode is missing: expected static or dynamic")
        if m.profile is not None:
            raise ValueError(f"{p}aipp for input '{n}': AIPP and a dynamic profile (dynamic_batch, dynamic_hw, "
                             "dynamic_dims, dynamic_shape) cannot be combined in the emulator")
        nchw = t.format == "NCHW"
        if len(t.dims) != 4 or t.format not in ("NCHW", "NHWC"):
            raise ValueError(f"{p}aipp for input '{n}': the AIPP output must be a 4-dim NCHW or NHWC tensor, got "
                             f"{len(t.dims)} dims in format {t.format}")
        if t.dtype not in ("float16", "float32"):
            raise ValueError(f"{p}aipp for input '{n}': the AIPP output must be float16 or float32, got {t.dtype}")
        c, h, w = (t.dims[1], t.dims[2], t.dims[3]) if nchw else (t.dims[3], t.dims[1], t.dims[2])
        if a.aipp_mode == "dynamic":
            if a.max_src_image_size == 0:
                raise ValueError(f"{p}aipp for input '{n}': dynamic AIPP needs max_src_image_size")
            if a.max_src_image_size % t.dims[0]:
                raise ValueError(f"{p}aipp for input '{n}': max_src_image_size {a.max_src_image_size} is not a multiple "
                                 f"of the batch {t.dims[0]}")
            for pp in AIPP_PARAMS[1:]:
                if pp.name != "max_src_image_size" and getattr(a, pp.name) != pp.default:
                    raise ValueError(f"{p}aipp for input '{n}': dynamic AIPP takes '{pp.name}' at run time "
                                     "(aclmdlSetAIPP*), not from the model file")
            if c not in (1, 3):
                raise ValueError(f"{p}aipp for input '{n}': dynamic AIPP needs 1 or 3 channels, the input has {c}")
            if dynamic_input is not None:
                raise ValueError(f"{p}aipp for input '{n}': only one input may have dynamic AIPP (input "
                                 f"'{dynamic_input}' has it already)")
            dynamic_input = n
            continue
        if a.input_format is None:
            raise ValueError(f"{p}aipp for input '{n}': static AIPP needs input_format")
        if a.src_image_size_w == 0 or a.src_image_size_h == 0:
            raise ValueError(f"{p}aipp for input '{n}': static AIPP needs src_image_size_w and src_image_size_h")
        if a.max_src_image_size != 0:
            raise ValueError(f"{p}aipp for input '{n}': max_src_image_size is for dynamic AIPP only")
        channels = AIPP_FORMATS[a.input_format][1]
        if channels != c:
            raise ValueError(f"{p}aipp for input '{n}': input_format {a.input_format} gives {channels} channel(s) but "
                             f"the input has {c}")
        yuv420 = a.input_format == "YUV420SP_U8"
        if a.input_format == "YUV400_U8" and a.csc_switch:
            raise ValueError(f"{p}aipp for input '{n}': YUV400_U8 takes no colour-space conversion (csc_switch)")
        sw, sh = a.src_image_size_w, a.src_image_size_h
        if yuv420 and (sw % 2 or sh % 2):
            raise ValueError(f"{p}aipp for input '{n}': YUV420SP_U8 needs an even src_image_size_w and "
                             f"src_image_size_h, got {sw}x{sh}")
        ow, oh = sw, sh
        if a.crop:
            x, y, cw, ch = a.load_start_pos_w, a.load_start_pos_h, a.crop_size_w, a.crop_size_h
            if x + cw > sw or y + ch > sh:
                raise ValueError(f"{p}aipp for input '{n}': the crop window (load_start_pos {x},{y}, crop_size "
                                 f"{cw}x{ch}) does not fit in the {sw}x{sh} source image")
            if yuv420 and (x % 2 or y % 2):
                raise ValueError(f"{p}aipp for input '{n}': YUV420SP_U8 needs an even load_start_pos_w and "
                                 f"load_start_pos_h, got {x},{y}")
            ow, oh = cw, ch
        if a.padding:
            ow += a.left_padding_size + a.right_padding_size
            oh += a.top_padding_size + a.bottom_padding_size
        if (ow, oh) != (w, h):
            raise ValueError(f"{p}aipp for input '{n}': the AIPP output is {ow}x{oh} (width x height) but the input "
                             f"is {w}x{h}")
def _profile_token(key: str, value: tuple) -> str:
    """The text form of a dynamic_hw / dynamic_dims / dynamic_shape value."""
    if key == "dynamic_shape":
        return ",".join("~".join(str(v) for v in r) for r in value)
    return ";".join(",".join(str(v) for v in g) for g in value)


def _parse_profile(key: str, tok: str, p: str) -> tuple:
    """dynamic_hw 'H,W;H,W', dynamic_dims 'V,V,..;V,V,..' or dynamic_shape 'MIN~MAX,MIN~MAX'.
    Field by field, each fully checked before the next is read (the C parser's order)."""
    if key == "dynamic_shape":
        ranges = []
        for i, f in enumerate(tok.split(",")):
            if i == MAX_DYN_DIMS:
                raise ValueError(f"{p}too many dynamic_shape ranges: expected at most {MAX_DYN_DIMS}")
            lo, sep, hi = f.partition("~")
            if not sep or not _INT_RE.fullmatch(lo) or not _INT_RE.fullmatch(hi):
                raise ValueError(
                    f"{p}bad dynamic_shape {_quote(tok)}: expected comma-separated MIN~MAX ranges, got {_quote(f)} at position {i}"
                )
            a, b = int(lo), int(hi)
            if not 1 <= a <= b <= _INT64_MAX:
                raise ValueError(f"{p}dynamic_shape range {i} must satisfy 1 <= MIN <= MAX <= {_INT64_MAX}, got {_quote(f)}")
            ranges.append((a, b))
        return tuple(ranges)
    gears: list[tuple[int, ...]] = []
    for i, g in enumerate(tok.split(";")):
        if i == MAX_GEARS:
            raise ValueError(f"{p}too many {key} gears: expected at most {MAX_GEARS}")
        vals: list[int] = []
        for j, f in enumerate(g.split(",")):
            if key == "dynamic_hw" and j == 2:
                raise ValueError(f"{p}dynamic_hw gear {i} {_quote(g)}: expected H,W (two integers)")
            if j == MAX_DYN_DIMS:
                raise ValueError(f"{p}dynamic_dims gear {i} has more than {MAX_DYN_DIMS} values")
            if not _INT_RE.fullmatch(f):
                what = "an empty field" if f == "" else "a non-integer"
                raise ValueError(
                    f"{p}bad {key} {_quote(tok)}: expected ';'-separated gears of comma-separated integers, got {what} in gear {i} at position {j}"
                )
            v = int(f)
            if not 1 <= v <= _INT64_MAX:
                raise ValueError(f"{p}{key} gear {i} value {j} must be in 1..{_INT64_MAX}, got {_quote(f)}")
            vals.append(v)
        if key == "dynamic_hw" and len(vals) != 2:
            raise ValueError(f"{p}dynamic_hw gear {i} {_quote(g)}: expected H,W (two integers)")
        if gears and len(vals) != len(gears[0]):
            raise ValueError(f"{p}dynamic_dims gear {i} has {len(vals)} values but gear 0 has {len(gears[0])}")
        if tuple(vals) in gears:
            raise ValueError(f"{p}{key} gear {i} ({_quote(g)}) repeats gear {gears.index(tuple(vals))}")
        gears.append(tuple(vals))
    return tuple(gears)


def _check_profile_tensors(m: ModelDef, profile: str, where: _Where) -> None:
    """dynamic_hw / dynamic_dims / dynamic_shape: where the -1 dims may be, and how many."""
    dp = where.prefix(profile)
    n_dyn = 0
    for k, td in enumerate(m.inputs):
        axes = td.dynamic_axes
        n_dyn += len(axes)
        if profile == "dynamic_hw" and axes and (len(td.dims) != 4 or axes != HW_AXES.get(td.format)):
            raise ValueError(
                f"{where.tensor('input', k)}input '{td.name}': dynamic_hw needs -1 exactly at the H and W axes "
                f"of a 4-dim NCHW or NHWC input, got {td.format} {_dims_text(td.dims)}"
            )
    if n_dyn == 0:
        raise ValueError(f"{dp}{profile}: no input has a -1 dim")
    if n_dyn > MAX_DYN_DIMS:
        raise ValueError(f"{dp}{profile}: the inputs have {n_dyn} -1 dims: expected at most {MAX_DYN_DIMS}")
    if profile == "dynamic_dims" and len(m.dynamic_dims[0]) != n_dyn:
        raise ValueError(f"{dp}dynamic_dims gears have {len(m.dynamic_dims[0])} values but the inputs have {n_dyn} -1 dims")
    if profile == "dynamic_shape" and len(m.dynamic_shape) != n_dyn:
        raise ValueError(f"{dp}dynamic_shape has {len(m.dynamic_shape)} ranges but the inputs have {n_dyn} -1 dims")
    for k, td in enumerate(m.outputs):
        ti = m.inputs[k] if k < len(m.inputs) else None
        tp = where.tensor("output", k)
        for j in td.dynamic_axes:
            if ti is None or j >= len(ti.dims) or ti.dims[j] != -1:
                raise ValueError(
                    f"{tp}output '{td.name}': dims[{j}] is -1, so input {k} must have a -1 dims[{j}] too "
                    "(an output's -1 dim takes its input's value)"
                )
        if ti is not None and td.dims[0] != ti.dims[0]:
            raise ValueError(
                f"{tp}output '{td.name}': dims[0] is {td.dims[0]} but input '{ti.name}' has {ti.dims[0]}: "
                f"output {k} keeps the batch dimension of input {k}"
            )


def _integral_in_i64(v: float) -> bool:
    return -(2.0**63) <= v < 2.0**63 and float(v).is_integer()


def _check_model(m: ModelDef, where: _Where) -> None:
    """Whole-model rules (the C parser's finish()): counts, batch axis, sizes, kernel fit."""
    p = where.prefix()
    if not m.inputs:
        raise ValueError(f"{p}no inputs: expected 1 to {MAX_IO} 'input' lines")
    if not m.outputs:
        raise ValueError(f"{p}no outputs: expected 1 to {MAX_IO} 'output' lines")
    dynamic = bool(m.dynamic_batch)
    profile = m.profile
    dyn_ref = f" (line {where.lines['dynamic_batch']})" if where.lines is not None and dynamic else ""
    batch0 = m.inputs[0].dims[0]
    for kind, tensors in (("input", m.inputs), ("output", m.outputs)):
        for k, td in enumerate(tensors):
            d0 = td.dims[0]
            tp = where.tensor(kind, k)
            if d0 == -1 and profile is None:
                raise ValueError(
                    f"{tp}{kind} '{td.name}': dims[0] is -1 (dynamic batch) but the model has no dynamic_batch line"
                )
            if d0 != -1 and dynamic:
                raise ValueError(
                    f"{tp}{kind} '{td.name}': dims[0] must be -1 because the model declares "
                    f"dynamic_batch{dyn_ref}, got {d0}"
                )
            for j in td.dynamic_axes:
                if j == 0:
                    continue
                if profile is None:
                    raise ValueError(
                        f"{tp}{kind} '{td.name}': dims[{j}] is -1 (dynamic) but the model has no "
                        "dynamic_hw, dynamic_dims or dynamic_shape line"
                    )
                if dynamic:
                    raise ValueError(f"{tp}{kind} '{td.name}': dims[{j}] is -1 but dynamic_batch makes only dims[0] dynamic")
            if profile is None and d0 != batch0:
                ref = f" ({where.ref('input', 0)})" if where.lines is not None else ""
                raise ValueError(
                    f"{tp}{kind} '{td.name}': dims[0] is {d0} but input '{m.inputs[0].name}'{ref} has "
                    f"{batch0}: all tensors must share the batch dimension"
                )
    if profile is not None and not dynamic:
        _check_profile_tensors(m, profile, where)
    shapes = m.profile_shapes()
    for kind, tensors in (("input", m.inputs), ("output", m.outputs)):
        for k, td in enumerate(tensors):
            if not profile or dynamic:
                if td.nbytes(m.max_batch) > TENSOR_BYTES_LIMIT:
                    raise ValueError(
                        f"{where.tensor(kind, k)}{kind} '{td.name}' is too large: at batch {m.max_batch} it holds "
                        f"more than {TENSOR_BYTES_LIMIT} bytes (the limit is 2^40 bytes per tensor)"
                    )
                continue
            for ins, outs in shapes:
                shape = (ins if kind == "input" else outs)[k]
                if math.prod(shape) * td.elem_size > TENSOR_BYTES_LIMIT:
                    raise ValueError(
                        f"{where.tensor(kind, k)}{kind} '{td.name}' is too large: at shape {_dims_text(shape)} it holds "
                        f"more than {TENSOR_BYTES_LIMIT} bytes (the limit is 2^40 bytes per tensor)"
                    )
    kp = where.prefix("kernel")
    if len(m.outputs) != len(m.inputs):
        raise ValueError(
            f"{kp}kernel '{m.kernel}' computes output k from input k, so it needs as many outputs as "
            f"inputs: got {len(m.inputs)} inputs and {len(m.outputs)} outputs"
        )
    varying = profile is not None and not dynamic
    for k, (ti, to) in enumerate(zip(m.inputs, m.outputs)):
        op = where.tensor("output", k)
        if m.kernel != "segment_sum" and to.dtype != ti.dtype:
            raise ValueError(
                f"{op}output '{to.name}' has dtype {to.dtype} but input '{ti.name}' has {ti.dtype}: "
                f"kernel '{m.kernel}' needs the same dtype for input {k} and output {k}"
            )
        for ins, outs in (shapes if varying else [(None, None)]):
            n = math.prod(ins[k][1:]) if varying else ti.sample_elems
            e = math.prod(outs[k][1:]) if varying else to.sample_elems
            at = f" (at input shape {_dims_text(ins[k])})" if varying else ""
            if m.kernel == "segment_sum" and e > n:
                raise ValueError(
                    f"{op}output '{to.name}' holds {e} elements per sample, more than the "
                    f"{n} of input '{ti.name}': kernel 'segment_sum' needs 1 <= output "
                    f"sample elements <= input sample elements{at}"
                )
            if m.kernel != "segment_sum" and e != n:
                raise ValueError(
                    f"{op}output '{to.name}' holds {e} elements per sample but input "
                    f"'{ti.name}' holds {n}: kernel '{m.kernel}' needs equal sample element counts{at}"
                )
        if m.kernel == "segment_sum":
            continue
        if m.kernel == "affine" and DTYPES[ti.dtype].kind != "f":
            for pname, v in (("scale", m.scale), ("bias", m.bias)):
                if not _integral_in_i64(v):
                    raise ValueError(
                        f"{kp}kernel 'affine' on {ti.dtype} tensors (input '{ti.name}') needs an integer "
                        f"{pname} within the int64 range, got {v:.17g}"
                    )
    _check_aipp_model(m, where)


# ----------------------------------------------------------------------------------------------
# Text
# ----------------------------------------------------------------------------------------------


def to_text(model: ModelDef) -> str:
    """The model file text of a (validated) model. Optional keys are written when not default."""
    model.validate()
    out = [
        "# fastexec emulator model file (format: docs/model-format.md)",
        f"{MAGIC} {FORMAT_VERSION}",
        f"name {model.name}",
    ]
    for kind, tensors in (("input", model.inputs), ("output", model.outputs)):
        for td in tensors:
            out.append(f"{kind} {td.name} {td.dtype} {td.format} {','.join(str(d) for d in td.dims)}")
    for a in model.aipp:
        for pp in AIPP_PARAMS:
            v = getattr(a, pp.name)
            if pp.name == "aipp_mode" or v != pp.default:
                out.append(f"aipp {a.input} {pp.name} {_aipp_text(pp, v)}")
    if model.kernel == "identity":
        out.append("kernel identity")
    else:
        out.append(f"kernel {model.kernel} scale={_fmt_float(model.scale)} bias={_fmt_float(model.bias)}")
    out.append(f"compute_us {_fmt_float(model.compute_us)}")
    if model.per_sample_us != 0.0:
        out.append(f"per_sample_us {_fmt_float(model.per_sample_us)}")
    if model.per_element_us != 0.0:
        out.append(f"per_element_us {_fmt_float(model.per_element_us)}")
    if model.dynamic_batch:
        out.append(f"dynamic_batch {','.join(str(g) for g in model.dynamic_batch)}")
    for key in PROFILE_KEYS[1:]:
        if getattr(model, key):
            out.append(f"{key} {_profile_token(key, getattr(model, key))}")
    if model.workspace_bytes:
        out.append(f"workspace_bytes {model.workspace_bytes}")
    if model.weight_bytes:
        out.append(f"weight_bytes {model.weight_bytes}")
    return "\n".join(out) + "\n"


def write_model(path: str | os.PathLike[str], model: ModelDef) -> pathlib.Path:
    """Validate and write atomically (temporary file in the same folder, then rename)."""
    from .._files import write_atomic

    data = to_text(model).encode("ascii")

    def write(f):
        f.write(data)
        f.flush()
        os.fsync(f.fileno())

    return write_atomic(path, write)


def read_model(path: str | os.PathLike[str]) -> ModelDef:
    """Read and parse a model file (ValueError on any format problem)."""
    return parse_model(pathlib.Path(path).read_bytes())


def _parse_dims(kind: str, name: str, tok: str, p: str) -> tuple[int, ...]:
    """Field by field, each fully checked before the next is read (the C parser's order)."""
    dims = []
    for i, f in enumerate(tok.split(",")):
        if i == MAX_DIMS:
            raise ValueError(f"{p}{kind} '{name}': too many dims: expected at most {MAX_DIMS}")
        if not _INT_RE.fullmatch(f):
            what = "an empty field" if f == "" else "a non-integer"
            raise ValueError(
                f"{p}{kind} '{name}': bad dims {_quote(tok)}: expected comma-separated integers, got {what} at position {i}"
            )
        _check_dim(kind, name, i, int(f), p)
        dims.append(int(f))
    return tuple(dims)


def _parse_gears(tok: str, p: str) -> tuple[int, ...]:
    gears: list[int] = []
    for i, f in enumerate(tok.split(",")):
        if i == MAX_GEARS:
            raise ValueError(f"{p}too many dynamic_batch gears: expected at most {MAX_GEARS}")
        if not _INT_RE.fullmatch(f):
            what = "an empty field" if f == "" else "a non-integer"
            raise ValueError(
                f"{p}bad dynamic_batch {_quote(tok)}: expected comma-separated integers, got {what} at position {i}"
            )
        _check_gear(i, int(f), gears[-1] if gears else None, f, p)
        gears.append(int(f))
    return tuple(gears)


def _parse_decimal(tok: str) -> float | None:
    """float of a token matching the decimal grammar; None on a syntax error. May be +-inf."""
    if not _DECIMAL_RE.fullmatch(tok):
        return None
    return float(tok)


def parse_model(text: str | bytes) -> ModelDef:
    """Parse model file text; ValueError('line N: ...' or 'model file: ...') on any problem.

    bytes are decoded as UTF-8 with surrogateescape, so byte counts and messages match the C
    parser even for invalid UTF-8.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", "surrogateescape")
    lines: dict[str, Any] = {"input": [], "output": [], "aipp": {}}
    aipp_values: dict[str, dict[str, Any]] = {}
    where = _Where(lines)
    have_header = False
    name: str | None = None
    inputs: list[TensorDef] = []
    outputs: list[TensorDef] = []
    kernel, scale, bias = "identity", 1.0, 0.0
    values: dict[str, Any] = {}

    for lineno, raw in enumerate(text.split("\n"), 1):
        p = f"line {lineno}: "
        nbytes = _byte_len(raw)
        if nbytes > MAX_LINE_BYTES:
            raise ValueError(f"{p}line is {nbytes} bytes long: expected at most {MAX_LINE_BYTES}")
        if "\0" in raw:
            raise ValueError(f"{p}NUL byte: a model file is text")
        toks = [t for t in _SEPARATORS_RE.split(raw.split("#", 1)[0]) if t]
        if not toks:
            continue
        key, args = toks[0], toks[1:]
        if not have_header:
            if key != MAGIC:
                raise ValueError(
                    f"{p}expected the header 'fastexec-emulator-model 1' as the first non-comment line, got {_quote(key)}"
                )
            if len(args) != 1:
                raise ValueError(
                    f"{p}header takes 1 field (the format version), got {len(args)}: expected 'fastexec-emulator-model 1'"
                )
            if not _INT_RE.fullmatch(args[0]):
                raise ValueError(f"{p}bad format version {_quote(args[0])}: expected an integer")
            if int(args[0]) != FORMAT_VERSION:
                raise ValueError(f"{p}unsupported format version {_quote(args[0])}: expected {FORMAT_VERSION}")
            have_header = True
            continue
        if key in ("input", "output"):
            target = inputs if key == "input" else outputs
            if len(args) != 4:
                raise ValueError(f"{p}'{key}' takes 4 fields (NAME DTYPE FORMAT DIMS), got {len(args)}")
            tname, dtype, fmt, dims_tok = args
            # Same order as the C parser: name, dtype, format, then the dims.
            _check_tensor_name(key, len(target), tname, target, p, where)
            _check_tensor_dtype(key, tname, dtype, p)
            _check_tensor_format(key, tname, fmt, p)
            td = TensorDef(tname, dtype, fmt, _parse_dims(key, tname, dims_tok, p))
            _check_tensor_dims(key, td, p)
            target.append(td)
            lines[key].append(lineno)
            continue
        if key == "aipp":
            if len(args) != 3:
                raise ValueError(f"{p}'aipp' takes 3 fields (INPUT PARAM VALUE), got {len(args)}")
            iname, pname, tok = args
            if iname not in [t.name for t in inputs]:
                raise ValueError(f"{p}aipp: no input named {_quote(iname)} is declared above this line")
            pp = _AIPP_BY_NAME.get(pname)
            if pp is None:
                raise ValueError(f"{p}unknown aipp parameter {_quote(pname)}: expected an ATC aipp_op parameter the "
                                 "emulator runs (see docs/model-format.md, AIPP)")
            seen = lines["aipp"].setdefault(iname, {})
            if pname in seen:
                raise ValueError(f"{p}duplicate aipp parameter '{pname}' for input '{iname}': already given on line "
                                 f"{seen[pname]}")
            aipp_values.setdefault(iname, {})[pname] = _parse_aipp_value(pp, tok, p)
            seen[pname] = lineno
            seen.setdefault("first", lineno)
            continue
        if key not in _KEYS:
            if key == MAGIC:
                raise ValueError(f"{p}duplicate header line: the header must appear once, as the first line")
            raise ValueError(f"{p}unknown key {_quote(key)}: expected one of {', '.join(_KEYS)}")
        if key in lines:
            raise ValueError(
                f"{p}duplicate key '{key}': it may appear once and was already given on line {lines[key]}"
            )
        lines[key] = lineno
        if key == "kernel":
            if not args:
                raise ValueError(f"{p}'kernel' needs a kernel name: expected identity, affine or segment_sum")
            kernel = args[0]
            _check_kernel_name(kernel, p)
            if kernel == "identity" and len(args) > 1:
                raise ValueError(f"{p}kernel 'identity' takes no parameters, got {_quote(args[1])}")
            if len(args) > 3:
                raise ValueError(f"{p}too many kernel parameters: expected at most scale=S and bias=B")
            seen: set[str] = set()
            for param in args[1:]:
                pkey, eq, pval = param.partition("=")
                if not eq:
                    raise ValueError(f"{p}bad kernel parameter {_quote(param)}: expected scale=S or bias=B")
                if pkey not in ("scale", "bias"):
                    raise ValueError(f"{p}unknown kernel parameter {_quote(pkey)}: expected scale or bias")
                if pkey in seen:
                    raise ValueError(f"{p}duplicate kernel parameter {_quote(pkey)}")
                seen.add(pkey)
                v = _parse_decimal(pval)
                if v is None:
                    raise ValueError(
                        f"{p}bad value for kernel parameter '{pkey}': expected a finite decimal number, got {_quote(pval)}"
                    )
                if not math.isfinite(v):
                    raise ValueError(f"{p}value for kernel parameter '{pkey}' is out of the double range: {_quote(pval)}")
                if pkey == "scale":
                    scale = v
                else:
                    bias = v
            _check_kernel(kernel, scale, bias, p)
            continue
        if len(args) != 1:
            raise ValueError(f"{p}'{key}' takes 1 field, got {len(args)}")
        tok = args[0]
        if key == "name":
            _check_model_name(tok, p)
            name = tok
        elif key in ("compute_us", "per_sample_us", "per_element_us"):
            v = _parse_decimal(tok)
            if v is None:
                raise ValueError(f"{p}bad {key} {_quote(tok)}: expected a decimal number of microseconds >= 0")
            if tok.startswith("-") and (v < 0 or not math.isfinite(v)):
                raise ValueError(f"{p}{key} must be >= 0, got {_quote(tok)}")
            if not math.isfinite(v):
                raise ValueError(f"{p}{key} {_quote(tok)} is too large: at most 9223372036854775807 ns")
            _check_time(key, v, tok, p)
            values[key] = v
        elif key in ("workspace_bytes", "weight_bytes"):
            if not _INT_RE.fullmatch(tok):
                raise ValueError(f"{p}bad {key} {_quote(tok)}: expected an integer >= 0")
            v = int(tok)
            _check_bytes(key, v, tok, p)
            values[key] = v
        else:  # a dynamic profile
            other = next((k for k in PROFILE_KEYS if k in lines and k != key), None)
            if other is not None:
                raise ValueError(
                    f"{p}{key}: a model declares at most one of {', '.join(PROFILE_KEYS)} (it also has {other})"
                )
            values[key] = _parse_gears(tok, p) if key == "dynamic_batch" else _parse_profile(key, tok, p)

    if not have_header:
        raise ValueError("model file: empty model file: expected the header line 'fastexec-emulator-model 1'")
    if name is None:
        raise ValueError("model file: missing required key 'name'")
    if "compute_us" not in values:
        raise ValueError("model file: missing required key 'compute_us'")
    model = ModelDef(
        name=name,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        kernel=kernel,
        scale=scale,
        bias=bias,
        aipp=tuple(AippDef(input=t.name, **aipp_values[t.name]) for t in inputs if t.name in aipp_values),
        **values,
    )
    _check_model(model, where)
    return model


# ----------------------------------------------------------------------------------------------
# Reference kernels (numpy), bit-exact with emu_kernel_run
# ----------------------------------------------------------------------------------------------


def _np_dtype(dtype: str) -> Any:
    import numpy as np

    return np.dtype(np.bool_) if dtype == "bool" else np.dtype(dtype)


def _to_float64(x: Any, dtype: str) -> Any:
    """Elements as float64: float16 exactly, integers rounded to nearest-even, bool as 0/1."""
    import numpy as np

    if dtype == "bool":
        return (x.view(np.uint8) != 0).astype(np.float64)
    return x.astype(np.float64)


def _from_float64(v: Any, dtype: str) -> Any:
    """float64 -> output dtype. Floats: round to nearest-even (overflow -> inf). bool: v != 0.
    Integers: NaN -> 0, v >= 2^63 -> INT64_MAX, v < -2^63 -> INT64_MIN, else truncate toward
    zero; then keep the low bits of the int64 (wrap to the dtype width)."""
    import numpy as np

    kind = DTYPES[dtype].kind
    if kind == "f":
        with np.errstate(over="ignore", invalid="ignore"):
            return v.astype(_np_dtype(dtype))
    if kind == "b":
        return v != 0.0
    nan = np.isnan(v)
    hi = v >= 2.0**63
    lo = v < -(2.0**63)
    i = np.where(nan | hi | lo, 0.0, v).astype(np.int64)  # astype truncates toward zero
    i[hi] = _INT64_MAX
    i[lo] = _INT64_MIN
    return i.astype(_np_dtype(dtype))


def _segment_sums(xd: Any, m: int) -> Any:
    """Per row of xd (B, n) float64: m sums over [floor(j*n/m), floor((j+1)*n/m)).

    Each sum must equal the C loop ``s = x[a]; for i in a+1..b-1: s += x[i]`` bit for bit, so
    neither np.sum nor np.add.reduceat may be used: both sum floats pairwise (in blocks of 8
    with partial sums), which rounds differently. np.add.accumulate is defined as the running
    left fold r[i] = r[i-1] + x[i] starting from r[0] = x[0], i.e. exactly the C order
    (including -0.0 for a segment of negative zeros), so its last element is the C sum.
    """
    import numpy as np

    b, n = xd.shape
    if n % m == 0:
        seg = n // m
        return np.add.accumulate(xd.reshape(b, m, seg), axis=2)[:, :, -1]
    starts = [(j * n) // m for j in range(m + 1)]
    out = np.empty((b, m), dtype=np.float64)
    for j in range(m):
        out[:, j] = np.add.accumulate(xd[:, starts[j] : starts[j + 1]], axis=1)[:, -1]
    return out


def reference_outputs(model: ModelDef, inputs: Sequence[Any], batch: int | None = None, aipp: Any = None) -> list[Any]:
    """The model's outputs for ``inputs`` (one array per model input, of the input's dtype),
    bit-exact with the C kernels.

    Static and dynamic-batch models: each input holds ``batch`` samples in any shape; ``batch``
    defaults to dims[0] (static) or to the sample count of ``inputs[0]`` (dynamic batch) and must
    be dims[0] or one of the gears. Outputs have shape ``(batch, *dims[1:])``. An AIPP input takes
    the raw images the runtime shows (:func:`visible_input`); ``aipp`` is the
    :class:`fastexec.AippConfig` of the model's dynamic AIPP input (required when it has one).

    dynamic_hw / dynamic_dims / dynamic_shape models: the inputs' shapes choose the gear (or lie
    within the ranges; :meth:`ModelDef.match_shapes` names what does not fit) and the outputs
    have their real shapes (an output's -1 dim is its input's dim on that axis).
    """
    import numpy as np

    model.validate()
    if len(inputs) != len(model.inputs):
        raise ValueError(f"model '{model.name}' has {len(model.inputs)} inputs, got {len(inputs)} arrays")
    arrays = [np.asarray(x) for x in inputs]
    if model.profile not in (None, "dynamic_batch"):
        for td, x in zip(model.inputs, arrays):
            if x.dtype != _np_dtype(td.dtype):
                raise ValueError(f"input '{td.name}' must be {td.dtype}, got {x.dtype}")
        in_shapes, out_shapes = model.shapes_of(model.match_shapes([x.shape for x in arrays]))
    else:
        if batch is None:
            if model.is_dynamic:
                per = model.inputs[0].sample_elems
                if arrays[0].size % per:
                    raise ValueError(f"input '{model.inputs[0].name}' holds {arrays[0].size} elements, not a whole number of samples of {per}")
                batch = arrays[0].size // per
            else:
                batch = model.inputs[0].dims[0]
        if model.is_dynamic and batch not in model.dynamic_batch:
            raise ValueError(f"batch {batch} is not a gear of model '{model.name}': gears are {list(model.dynamic_batch)}")
        if not model.is_dynamic and batch != model.inputs[0].dims[0]:
            raise ValueError(f"model '{model.name}' is static with batch {model.inputs[0].dims[0]}, got batch {batch}")
        kernel_inputs = []
        for k, (td, x) in enumerate(zip(model.inputs, arrays)):
            shown = visible_input(model, k)
            if x.dtype != _np_dtype(shown.dtype):
                raise ValueError(f"input '{td.name}' must be {shown.dtype}, got {x.dtype}")
            if x.size != batch * shown.sample_elems:
                raise ValueError(
                    f"input '{td.name}' must hold {batch * shown.sample_elems} elements (batch {batch}), got {x.size}"
                )
            x = np.ascontiguousarray(x).reshape(batch, shown.sample_elems)
            a = model.aipp_of(td.name)
            if a is not None:
                x = _run_aipp(a, td, x, aipp, batch)
            kernel_inputs.append(x.reshape(batch, td.sample_elems))
        arrays = kernel_inputs
        in_shapes, out_shapes = model.shapes_of((batch,) * len(model.inputs) if model.is_dynamic else ())

    outs = []
    for ti, to, x, si, so in zip(model.inputs, model.outputs, arrays, in_shapes, out_shapes):
        rows = np.ascontiguousarray(x).reshape(si[0], math.prod(si[1:]))
        if model.kernel == "identity":
            y = rows.copy()
        elif model.kernel == "affine":
            y = _affine(rows, ti.dtype, model.scale, model.bias)
        else:
            xd = _to_float64(rows, ti.dtype)
            with np.errstate(over="ignore", invalid="ignore"):
                v = _segment_sums(xd, math.prod(so[1:])) * model.scale + model.bias
            y = _from_float64(v, to.dtype)
        outs.append(y.reshape(so))
    return outs


def visible_input(model: ModelDef, k: int, v1: bool = False) -> TensorDef:
    """Input k as the runtime shows it (emu_input_visible): the raw image of an AIPP input
    (uint8 NHWC n,h*3/2,w,1 / n,h,w,3 / n,h,w,1, or ND n,max_src_image_size/n for dynamic AIPP;
    ``v1``: aclmdlGetInputDims's n,h,w,c), otherwise the TensorDef itself."""
    td = model.inputs[k]
    a = model.aipp_of(td.name)
    if a is None:
        return td
    n = td.dims[0]
    if a.aipp_mode == "dynamic":
        return TensorDef(td.name, "uint8", "ND", (n, a.max_src_image_size // n))
    c = AIPP_FORMATS[a.input_format][1]
    h, w = a.src_image_size_h, a.src_image_size_w
    if a.input_format == "YUV420SP_U8" and not v1:
        return TensorDef(td.name, "uint8", "NHWC", (n, h * 3 // 2, w, 1))
    return TensorDef(td.name, "uint8", "NHWC", (n, h, w, c))


def aipp_data_size(batch: int) -> int:
    """Bytes of the dynamic AIPP parameter tensor for `batch` images (aclmdlGetAippDataSize)."""
    return AIPP_HEADER_BYTES + AIPP_BATCH_BYTES * batch


def _half(v: float) -> Any:
    """A float parameter as the AIPP stores it: rounded to float32 (the setters' C type), then to binary16."""
    import numpy as np

    return np.float16(np.float32(v))


def _run_aipp(a: Any, td: TensorDef, raw: Any, config: Any, batch: int) -> Any:
    """The AIPP output (the kernel's input, of td's dtype and layout) for raw images, one row each."""
    import numpy as np

    if a.aipp_mode == "dynamic":
        if config is None:
            raise ValueError(f"input '{td.name}' has dynamic AIPP: pass its parameters as aipp=AippConfig(...)")
        nchw = td.format == "NCHW"
        c, h, w = (td.dims[1], td.dims[2], td.dims[3]) if nchw else (td.dims[3], td.dims[1], td.dims[2])
        entries = config.check(batch, w, h, c, a.max_src_image_size)
        fmt = config.input_format
        if fmt not in AIPP_FORMATS:
            raise ValueError(f"the emulator runs no {fmt} AIPP")
        sw, sh = config.src_image_size
        csc = config.csc
        image = dict(format=fmt, w=sw, h=sh, rbuv=config.rbuv_swap_switch, csc=csc is not None,
                     matrix=csc["matrix"] if csc else (0,) * 9, ob=csc["output_bias"] if csc else (0,) * 3,
                     ib=csc["input_bias"] if csc else (0,) * 3, pad=np.float16(0))
        per = [dict(crop=e["crop"], padding=e["padding"], mean=e["dtc_pixel_mean"],
                    min=[_half(v) for v in e["dtc_pixel_min"]], var=[_half(v) for v in e["pixel_var_reci"]])
               for e in entries]
    else:
        image = dict(format=a.input_format, w=a.src_image_size_w, h=a.src_image_size_h, rbuv=a.rbuv_swap_switch,
                     csc=a.csc_switch, matrix=[getattr(a, f"matrix_r{r}c{c}") for r in range(3) for c in range(3)],
                     ob=[a.output_bias_0, a.output_bias_1, a.output_bias_2],
                     ib=[a.input_bias_0, a.input_bias_1, a.input_bias_2], pad=_half(a.padding_value))
        one = dict(crop=(a.load_start_pos_w, a.load_start_pos_h, a.crop_size_w, a.crop_size_h) if a.crop else None,
                   padding=(a.top_padding_size, a.bottom_padding_size, a.left_padding_size, a.right_padding_size)
                   if a.padding else None,
                   mean=[getattr(a, f"mean_chn_{i}") for i in range(4)],
                   min=[_half(getattr(a, f"min_chn_{i}")) for i in range(4)],
                   var=[_half(getattr(a, f"var_reci_chn_{i}")) for i in range(4)])
        per = [one] * batch
    return np.stack([_aipp_image(image, per[b], raw[b], td) for b in range(batch)])


def _aipp_image(im: dict, e: dict, raw: Any, td: TensorDef) -> Any:
    """One image through the AIPP (docs/model-format.md, "AIPP arithmetic"), bit-exact with
    model_file.c's aipp_sample()."""
    import numpy as np

    w, h, fmt = im["w"], im["h"], im["format"]
    raw = raw.astype(np.int64)
    if fmt == "YUV420SP_U8":
        y = raw[: h * w].reshape(h, w)
        uv = raw[h * w : h * w * 3 // 2].reshape(h // 2, w)
        u = np.repeat(np.repeat(uv[:, 0::2], 2, axis=0), 2, axis=1)
        v = np.repeat(np.repeat(uv[:, 1::2], 2, axis=0), 2, axis=1)
        ch = np.stack([y, v, u] if im["rbuv"] else [y, u, v])
    elif fmt == "RGB888_U8":
        ch = raw[: h * w * 3].reshape(h, w, 3).transpose(2, 0, 1)
        if im["rbuv"]:
            ch = ch[::-1]
    else:
        ch = raw[: h * w].reshape(1, h, w)
    if e["crop"] is not None:
        x0, y0, cw, chh = e["crop"]
        ch = ch[:, y0 : y0 + chh, x0 : x0 + cw]
    nc = ch.shape[0]
    if im["csc"] and nc == 3:
        m = np.array(im["matrix"], dtype=np.int64).reshape(3, 3)
        ib = np.array(im["ib"], dtype=np.int64).reshape(3, 1, 1)
        ob = np.array(im["ob"], dtype=np.int64).reshape(3, 1, 1)
        acc = np.tensordot(m, ch - ib, axes=(1, 0))
        ch = np.clip(np.right_shift(acc, 8) + ob, 0, 255)
    mean = np.array(e["mean"][:nc], dtype=np.int64).reshape(nc, 1, 1)
    mins = np.array(e["min"][:nc], dtype=np.float64).reshape(nc, 1, 1)
    var = np.array(e["var"][:nc], dtype=np.float64).reshape(nc, 1, 1)
    vals = ((ch - mean).astype(np.float64) - mins) * var
    top = left = bottom = right = 0
    if e["padding"] is not None:
        top, bottom, left, right = e["padding"]
    out = np.full((nc, vals.shape[1] + top + bottom, vals.shape[2] + left + right), np.float64(im["pad"]))
    out[:, top : top + vals.shape[1], left : left + vals.shape[2]] = vals
    with np.errstate(over="ignore"):
        out = out.astype(_np_dtype(td.dtype))
    return out if td.format == "NCHW" else out.transpose(1, 2, 0)


def _affine(x: Any, dtype: str, scale: float, bias: float) -> Any:
    import numpy as np

    kind = DTYPES[dtype].kind
    if kind == "f":
        # Two roundings in double (multiply, then add), then one to the dtype; never an FMA.
        with np.errstate(over="ignore", invalid="ignore"):
            return (x.astype(np.float64) * scale + bias).astype(_np_dtype(dtype))
    s, b = np.int64(int(scale)), np.int64(int(bias))
    if kind == "b":
        xi = (x.view(np.uint8) != 0).astype(np.int64)
        return (xi * s + b) != 0
    # int64 two's-complement arithmetic wraps; uint64 reinterprets as int64 and back.
    return (x.astype(np.int64) * s + b).astype(_np_dtype(dtype))
