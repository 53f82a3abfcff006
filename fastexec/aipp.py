"""Dynamic AIPP parameters: :class:`AippConfig`, and the ATC ``aipp_op { ... }`` file reader.

An :class:`AippConfig` holds the parameters of one dynamic AIPP input the way the
``aclmdlSetAIPP*`` setters take them (keyword names follow the setters). Constructing one checks
each parameter's range as its setter does; :meth:`AippConfig.check` applies the rules
``aclmdlSetInputAIPP`` applies against a model (batch, output size, source size). Both raise
:class:`AippError` (a ValueError carrying the ACL code the call would return) before anything is
queued. ``fastexec.Executor(model, aipp=...)`` and ``submit(..., aipp=...)`` take it, and so does
``fastexec.emulator.model_file.reference_outputs(..., aipp=...)``.

Pure Python (no numpy, no ACL): importing it is cheap.
"""

from __future__ import annotations

import math
import re
from typing import Any, Sequence

__all__ = ["AippConfig", "AippError", "CSC_YUV420SP_TO_RGB_JPEG", "INPUT_FORMATS", "parse_aipp_config"]

ACL_ERROR_INVALID_PARAM = 100000

# aclAippInputFormat values by name (acl_mdl.h).
INPUT_FORMATS: dict[str, int] = {
    "YUV420SP_U8": 1, "XRGB8888_U8": 2, "RGB888_U8": 3, "YUV400_U8": 4, "NC1HWC0DI_FP16": 5, "NC1HWC0DI_S8": 6,
    "ARGB8888_U8": 7, "YUYV_U8": 8, "YUV422SP_U8": 9, "AYUV444_U8": 10, "RAW10": 11, "RAW12": 12, "RAW16": 13,
    "RAW24": 14,
}
_FORMAT_NAMES = {v: k for k, v in INPUT_FORMATS.items()}
# The formats aclmdlSetInputAIPP accepts for dynamic AIPP, and their channels after AIPP.
_DYNAMIC_FORMATS = {"YUV420SP_U8": 3, "XRGB8888_U8": 4, "RGB888_U8": 3, "YUV400_U8": 1}

# The ATC documentation's YUV420SP (JPEG, full range) to RGB conversion.
CSC_YUV420SP_TO_RGB_JPEG = {
    "matrix": (256, 0, 359, 256, -88, -183, 256, 454, 0),
    "output_bias": (0, 0, 0),
    "input_bias": (0, 128, 128),
}


class AippError(ValueError):
    """An AIPP parameter out of range or inconsistent; ``code`` is what the ACL call returns."""

    def __init__(self, message: str, code: int = ACL_ERROR_INVALID_PARAM):
        super().__init__(message)
        self.code = code

    def __reduce__(self):
        return (type(self), (str(self), self.code))


def _int_in(what: str, v: Any, lo: int, hi: int, setter: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise AippError(f"AippConfig: {what} must be an integer in [{lo}, {hi}], got {v!r} ({setter} returns "
                        f"ACL_ERROR_INVALID_PARAM)")
    return int(v)


def _float_in(what: str, v: Any, lo: float, hi: float, setter: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise AippError(f"AippConfig: {what} must be a number in [{lo:g}, {hi:g}], got {v!r} ({setter} returns "
                        f"ACL_ERROR_INVALID_PARAM)")
    return float(v)


def _tuple(what: str, v: Any, n: int | Sequence[int]) -> tuple:
    counts = (n,) if isinstance(n, int) else tuple(n)
    if isinstance(v, (str, bytes)) or not hasattr(v, "__len__") or len(v) not in counts:
        raise AippError(f"AippConfig: {what} must be a sequence of {' or '.join(map(str, counts))} values, got {v!r}")
    return tuple(v)


class AippConfig:
    """Dynamic AIPP parameters (keyword-only, named after the aclmdlSetAIPP* setters).

    ``input_format``: an aclAippInputFormat name ("YUV420SP_U8", "RGB888_U8", ...) or value;
    ``src_image_size``: (width, height); ``csc``: None (off) or a mapping with ``matrix`` (9
    ints, row-major), ``output_bias`` and ``input_bias`` (3 ints each), e.g.
    :data:`CSC_YUV420SP_TO_RGB_JPEG`; ``rbuv_swap_switch`` / ``ax_swap_switch``: bools;
    ``crop``: None or (start_w, start_h, size_w, size_h); ``padding``: None or (top, bottom,
    left, right); ``dtc_pixel_mean`` (ints), ``dtc_pixel_min``, ``pixel_var_reci`` (floats): 3
    or 4 per-channel values (channel 3 defaults to 0, 0 and 1.0). The per-batch parameters
    (crop, padding and the three dtc ones) take one value for every image of the batch, or a
    list with one value per image.
    """

    __slots__ = ("input_format", "src_image_size", "csc", "rbuv_swap_switch", "ax_swap_switch", "_batch")

    def __init__(self, *, input_format, src_image_size, csc=None, rbuv_swap_switch=False, ax_swap_switch=False,
                 crop=None, padding=None, dtc_pixel_mean=None, dtc_pixel_min=None, pixel_var_reci=None):
        if isinstance(input_format, str):
            if input_format not in INPUT_FORMATS:
                raise AippError(f"AippConfig: unknown input_format {input_format!r}: expected one of "
                                f"{', '.join(INPUT_FORMATS)} (aclmdlSetAIPPInputFormat returns ACL_ERROR_INVALID_PARAM)")
            self.input_format = input_format
        elif isinstance(input_format, int) and not isinstance(input_format, bool) and input_format in _FORMAT_NAMES:
            self.input_format = _FORMAT_NAMES[input_format]
        else:
            raise AippError(f"AippConfig: input_format must be an aclAippInputFormat name or value, got {input_format!r}")
        w, h = _tuple("src_image_size", src_image_size, 2)
        self.src_image_size = (_int_in("src_image_size width", w, 2, 4096, "aclmdlSetAIPPSrcImageSize"),
                               _int_in("src_image_size height", h, 1, 4096, "aclmdlSetAIPPSrcImageSize"))
        if csc is not None and csc is not False:
            if not hasattr(csc, "get"):
                matrix, output_bias, input_bias = _tuple("csc", csc, 3)
                csc = {"matrix": matrix, "output_bias": output_bias, "input_bias": input_bias}
            m = _tuple("csc matrix", csc.get("matrix"), 9)
            ob = _tuple("csc output_bias", csc.get("output_bias", (0, 0, 0)), 3)
            ib = _tuple("csc input_bias", csc.get("input_bias", (0, 0, 0)), 3)
            s = "aclmdlSetAIPPCscParams"
            csc = {"matrix": tuple(_int_in(f"csc matrix[{i}]", v, -32677, 32676, s) for i, v in enumerate(m)),
                   "output_bias": tuple(_int_in(f"csc output_bias[{i}]", v, 0, 255, s) for i, v in enumerate(ob)),
                   "input_bias": tuple(_int_in(f"csc input_bias[{i}]", v, 0, 255, s) for i, v in enumerate(ib))}
        else:
            csc = None
        self.csc = csc
        for name, v in (("rbuv_swap_switch", rbuv_swap_switch), ("ax_swap_switch", ax_swap_switch)):
            if not isinstance(v, (bool, int)) or v not in (0, 1):
                raise AippError(f"AippConfig: {name} must be a bool, got {v!r}")
        self.rbuv_swap_switch = bool(rbuv_swap_switch)
        self.ax_swap_switch = bool(ax_swap_switch)
        self._batch = {
            "crop": self._per_batch("crop", crop, self._crop),
            "padding": self._per_batch("padding", padding, self._padding),
            "dtc_pixel_mean": self._per_batch("dtc_pixel_mean", dtc_pixel_mean, self._mean),
            "dtc_pixel_min": self._per_batch("dtc_pixel_min", dtc_pixel_min, self._min),
            "pixel_var_reci": self._per_batch("pixel_var_reci", pixel_var_reci, self._var),
        }

    # ---------------------------------------------------------------- per-batch parameters

    @staticmethod
    def _per_batch(name, value, one):
        """('all', value) or ('each', [values]) after checking every value with `one`."""
        if value is None:
            return ("all", one(name, None))
        if isinstance(value, list) and value and (value[0] is None or hasattr(value[0], "__len__")):
            return ("each", [one(f"{name}[{i}]", v) for i, v in enumerate(value)])
        return ("all", one(name, value))

    @staticmethod
    def _crop(name, v):
        if v is None:
            return None
        x, y, w, h = _tuple(name, v, 4)
        s = "aclmdlSetAIPPCropParams"
        return (_int_in(f"{name} start_w", x, 0, 4095, s), _int_in(f"{name} start_h", y, 0, 4095, s),
                _int_in(f"{name} size_w", w, 1, 4096, s), _int_in(f"{name} size_h", h, 1, 4096, s))

    @staticmethod
    def _padding(name, v):
        if v is None:
            return None
        s = "aclmdlSetAIPPPaddingParams"
        return tuple(_int_in(f"{name} {side}", x, 0, 32, s)
                     for side, x in zip(("top", "bottom", "left", "right"), _tuple(name, v, 4)))

    @staticmethod
    def _mean(name, v):
        vals = (0, 0, 0, 0) if v is None else _tuple(name, v, (3, 4)) + (0,) * (4 - len(v))
        return tuple(_int_in(f"{name}[{i}]", x, 0, 255, "aclmdlSetAIPPDtcPixelMean") for i, x in enumerate(vals))

    @staticmethod
    def _min(name, v):
        vals = (0.0,) * 4 if v is None else _tuple(name, v, (3, 4)) + (0.0,) * (4 - len(v))
        return tuple(_float_in(f"{name}[{i}]", x, 0, 255, "aclmdlSetAIPPDtcPixelMin") for i, x in enumerate(vals))

    @staticmethod
    def _var(name, v):
        vals = (1.0,) * 4 if v is None else _tuple(name, v, (3, 4)) + (1.0,) * (4 - len(v))
        return tuple(_float_in(f"{name}[{i}]", x, -65504, 65504, "aclmdlSetAIPPPixelVarReci")
                     for i, x in enumerate(vals))

    def entries(self, batch: int) -> list[dict]:
        """The per-image parameters for a batch of `batch` images (crop, padding, mean, min,
        var_reci; crop/padding None when off)."""
        out = [{} for _ in range(batch)]
        for name, (how, value) in self._batch.items():
            if how == "each" and len(value) != batch:
                raise AippError(f"AippConfig: {name} gives {len(value)} per-image values but the model's batch is "
                                f"{batch} (aclmdlSetAIPP* returns ACL_ERROR_INVALID_PARAM for batchIndex >= batchSize)")
            for b in range(batch):
                out[b][name] = value[b] if how == "each" else value
        return out

    # ---------------------------------------------------------------- whole-config rules

    def image_bytes(self) -> int:
        """Bytes of one source image of this format and size (GE's GetSrcImageSize per image)."""
        w, h = self.src_image_size
        per_pixel = {"YUV420SP_U8": 1.5, "XRGB8888_U8": 4, "RGB888_U8": 3, "YUV400_U8": 1, "ARGB8888_U8": 4,
                     "YUYV_U8": 2, "YUV422SP_U8": 2, "AYUV444_U8": 4, "RAW10": 2, "RAW12": 2, "RAW16": 2,
                     "RAW24": 4}.get(self.input_format, 0)
        return int(w * h * per_pixel)

    def output_size(self, entry: dict) -> tuple[int, int]:
        """(width, height) of the AIPP output of one image."""
        w, h = self.src_image_size
        if entry["crop"] is not None:
            w, h = entry["crop"][2], entry["crop"][3]
        if entry["padding"] is not None:
            top, bottom, left, right = entry["padding"]
            w, h = w + left + right, h + top + bottom
        return w, h

    def check(self, batch: int, width: int | None = None, height: int | None = None, channels: int | None = None,
              max_src_image_size: int | None = None) -> list[dict]:
        """The rules aclmdlSetInputAIPP applies for a model whose AIPP output is `batch` x
        `channels` x `height` x `width` (ACL_ERROR_INVALID_PARAM when broken; what is None is
        not checked); returns entries(batch)."""
        entries = self.entries(batch)
        if max_src_image_size is not None and self.image_bytes() * batch > max_src_image_size:
            raise AippError(f"AippConfig: the source images ({batch} x {self.image_bytes()} bytes, {self.input_format} "
                            f"{self.src_image_size[0]}x{self.src_image_size[1]}) exceed the model's max_src_image_size "
                            f"{max_src_image_size}")
        for b, e in enumerate(entries):
            if width is not None and self.output_size(e) != (width, height):
                ow, oh = self.output_size(e)
                raise AippError(f"AippConfig: the AIPP output of image {b} is {ow}x{oh} (width x height) but the model "
                                f"takes {width}x{height}")
        sizes = {self.output_size(e) for e in entries}
        if len(sizes) > 1:
            raise AippError(f"AippConfig: every image of a batch must give the same AIPP output size, got "
                            f"{', '.join(f'{w}x{h}' for w, h in sorted(sizes))}")
        if self.input_format not in _DYNAMIC_FORMATS:
            raise AippError(f"AippConfig: dynamic AIPP takes {', '.join(_DYNAMIC_FORMATS)}, got {self.input_format}")
        if channels is not None and _DYNAMIC_FORMATS[self.input_format] != channels:
            raise AippError(f"AippConfig: input_format {self.input_format} gives {_DYNAMIC_FORMATS[self.input_format]} "
                            f"channel(s) but the model's AIPP output has {channels}")
        if self.input_format == "YUV400_U8" and self.csc is not None:
            raise AippError("AippConfig: YUV400_U8 takes no colour-space conversion (csc)")
        w, h = self.src_image_size
        if self.input_format == "YUV420SP_U8" and (w % 2 or h % 2):
            raise AippError(f"AippConfig: YUV420SP_U8 needs an even src_image_size, got {w}x{h}")
        for b, e in enumerate(entries):
            if e["crop"] is None:
                continue
            x, y, cw, ch = e["crop"]
            if x + cw > w or y + ch > h:
                raise AippError(f"AippConfig: image {b}: the crop window ({x},{y} size {cw}x{ch}) does not fit in the "
                                f"{w}x{h} source image")
            if self.input_format == "YUV420SP_U8" and (x % 2 or y % 2):
                raise AippError(f"AippConfig: image {b}: YUV420SP_U8 needs an even crop start, got {x},{y}")
        return entries

    def __eq__(self, other):
        if not isinstance(other, AippConfig):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __hash__(self):
        return hash((self.input_format, self.src_image_size))

    def __repr__(self):
        parts = [f"input_format={self.input_format!r}", f"src_image_size={self.src_image_size!r}"]
        if self.csc is not None:
            parts.append(f"csc={self.csc!r}")
        for name in ("rbuv_swap_switch", "ax_swap_switch"):
            if getattr(self, name):
                parts.append(f"{name}=True")
        for name, (how, value) in self._batch.items():
            parts.append(f"{name}={value!r}")
        return f"AippConfig({', '.join(parts)})"


# ---------------------------------------------------------------- the ATC aipp_op file

_TOKEN_RE = re.compile(r"[{}:]|[^\s{}:#]+")


def _tokens(text: str):
    """(token, line) pairs; '#' starts a comment to the end of its line."""
    for n, raw in enumerate(text.splitlines(), 1):
        for m in _TOKEN_RE.finditer(raw.split("#", 1)[0]):
            yield m.group(0), n


def _parse_aipp_ops(text: str, origin: str) -> list[dict]:
    """The aipp_op blocks of an ATC AIPP config: a list of {key: (value text, line)}."""
    ops: list[dict] = []
    toks = list(_tokens(text))
    i = 0
    while i < len(toks):
        word, line = toks[i]
        if word != "aipp_op" or i + 1 >= len(toks) or toks[i + 1][0] != "{":
            raise AippError(f"{origin}:{line}: expected 'aipp_op {{', got {word!r}")
        i += 2
        op: dict = {}
        while True:
            if i >= len(toks):
                raise AippError(f"{origin}: the aipp_op block opened on line {line} is not closed with '}}'")
            key, kline = toks[i]
            if key == "}":
                i += 1
                break
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise AippError(f"{origin}:{kline}: expected a parameter name, got {key!r}")
            if i + 2 >= len(toks) or toks[i + 1][0] != ":" or toks[i + 2][0] in "{}:":
                raise AippError(f"{origin}:{kline}: expected '{key} : VALUE'")
            if key in op:
                raise AippError(f"{origin}:{kline}: '{key}' is given twice in one aipp_op (first on line {op[key][1]})")
            op[key] = (toks[i + 2][0].strip('"'), kline)
            i += 3
        ops.append(op)
    if not ops:
        raise AippError(f"{origin}: no aipp_op block")
    return ops


def parse_aipp_config(text: str, origin: str = "aipp config") -> AippConfig:
    """An AippConfig from ATC's AIPP config text (``aipp_op { key : value ... }``, ais_bench's
    ``--aipp_config``). One aipp_op block; ``aipp_mode`` may be static or dynamic (the values
    are run as dynamic parameters); ``related_input_rank`` must be 0 if given."""
    ops = _parse_aipp_ops(text, origin)
    if len(ops) != 1:
        raise AippError(f"{origin}: {len(ops)} aipp_op blocks; fastexec takes one (for the model's dynamic AIPP input)")
    op = ops[0]

    def get(key, kind, default=None):
        if key not in op:
            return default
        raw, line = op[key]
        if kind == "bool":
            if raw not in ("true", "false"):
                raise AippError(f"{origin}:{line}: {key} takes true or false, got {raw!r}")
            return raw == "true"
        if kind == "int":
            if not re.fullmatch(r"[+-]?[0-9]+", raw):
                raise AippError(f"{origin}:{line}: {key} takes an integer, got {raw!r}")
            return int(raw)
        if kind == "float":
            try:
                v = float(raw)
            except ValueError:
                raise AippError(f"{origin}:{line}: {key} takes a number, got {raw!r}") from None
            if not math.isfinite(v):
                raise AippError(f"{origin}:{line}: {key} takes a finite number, got {raw!r}")
            return v
        return raw

    known = {"aipp_mode", "related_input_rank", "input_format", "src_image_size_w", "src_image_size_h", "crop",
             "load_start_pos_w", "load_start_pos_h", "crop_size_w", "crop_size_h", "padding", "left_padding_size",
             "right_padding_size", "top_padding_size", "bottom_padding_size", "csc_switch", "rbuv_swap_switch",
             "ax_swap_switch", "max_src_image_size", "padding_value"}
    known |= {f"matrix_r{r}c{c}" for r in range(3) for c in range(3)}
    known |= {f"{p}_{i}" for p in ("output_bias", "input_bias") for i in range(3)}
    known |= {f"{p}_{i}" for p in ("mean_chn", "min_chn", "var_reci_chn") for i in range(4)}
    for key, (raw, line) in op.items():
        if key not in known:
            raise AippError(f"{origin}:{line}: unknown aipp_op parameter {key!r}")
    mode = get("aipp_mode", "str", "static")
    if mode not in ("static", "dynamic"):
        raise AippError(f"{origin}:{op['aipp_mode'][1]}: aipp_mode takes static or dynamic, got {mode!r}")
    if get("related_input_rank", "int", 0) != 0:
        raise AippError(f"{origin}:{op['related_input_rank'][1]}: related_input_rank must be 0 (fastexec sets the "
                        "model's one dynamic AIPP input)")
    if "input_format" not in op:
        raise AippError(f"{origin}: input_format is required")
    if "src_image_size_w" not in op or "src_image_size_h" not in op:
        raise AippError(f"{origin}: src_image_size_w and src_image_size_h are required")
    csc = None
    if get("csc_switch", "bool", False):
        csc = {"matrix": tuple(get(f"matrix_r{r}c{c}", "int", 0) for r in range(3) for c in range(3)),
               "output_bias": tuple(get(f"output_bias_{i}", "int", 0) for i in range(3)),
               "input_bias": tuple(get(f"input_bias_{i}", "int", 0) for i in range(3))}
    crop = None
    if get("crop", "bool", False):
        crop = (get("load_start_pos_w", "int", 0), get("load_start_pos_h", "int", 0),
                get("crop_size_w", "int", 0), get("crop_size_h", "int", 0))
    padding = None
    if get("padding", "bool", False):
        padding = tuple(get(f"{side}_padding_size", "int", 0) for side in ("top", "bottom", "left", "right"))
    return AippConfig(
        input_format=get("input_format", "str"),
        src_image_size=(get("src_image_size_w", "int"), get("src_image_size_h", "int")),
        csc=csc, rbuv_swap_switch=get("rbuv_swap_switch", "bool", False),
        ax_swap_switch=get("ax_swap_switch", "bool", False), crop=crop, padding=padding,
        dtc_pixel_mean=tuple(get(f"mean_chn_{i}", "int", 0) for i in range(4)),
        dtc_pixel_min=tuple(get(f"min_chn_{i}", "float", 0.0) for i in range(4)),
        pixel_var_reci=tuple(get(f"var_reci_chn_{i}", "float", 1.0) for i in range(4)),
    )
