"""A model's dynamic profile as the executor uses it: which shapes a batch may have, and the
checks that name the input, the given shape and the allowed gears or ranges before anything
is queued.

Kinds (``Model.dynamic_kind``): None (static), "dynamic_batch" (any rows up to the largest
gear; a batch runs at the smallest gear holding it), "dynamic_hw" and "dynamic_dims" (every
input's shape must be one gear's), "dynamic_shape" (every dim within its range).
"""
from __future__ import annotations

import operator

from .errors import FastexecError

MAX_SHAPE_DIMS = 16  # the pipeline core's per-tensor dims for shaped batches


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


class Profile:
    """``kind``; ``gears``: for dynamic_hw / dynamic_dims, each gear as one shape per input (in
    input order); ``ranges``: for dynamic_shape, each input's (min, max) per dim."""

    def __init__(self, model, output_size=None):
        self.kind = model.dynamic_kind
        self.inputs = list(model.inputs)
        self.outputs = list(model.outputs)
        self.gears: list[tuple[tuple[int, ...], ...]] = []
        self.ranges = [spec.shape_range for spec in self.inputs]
        if self.kind == "dynamic_hw":
            for h, w in model.dynamic_hw:
                self.gears.append(tuple(self._hw_shape(spec, h, w) for spec in self.inputs))
        elif self.kind == "dynamic_dims":
            for gear in model.dynamic_dims:
                self.gears.append(tuple(tuple(gear[spec.name]) for spec in self.inputs))
        self.output_sizes = self._output_sizes(output_size)

    @property
    def shaped(self) -> bool:
        """A kind whose batches carry a shape (dynamic HW / dims / shape), not just rows."""
        return self.kind in ("dynamic_hw", "dynamic_dims", "dynamic_shape")

    @staticmethod
    def _hw_shape(spec, h, w):
        axes = [i for i, d in enumerate(spec.shape) if d < 0]
        if not axes:
            return tuple(spec.shape)
        shape = list(spec.shape)
        shape[axes[0]], shape[axes[-1]] = h, w
        return tuple(shape)

    def check_model(self):
        """What the executor needs of a shaped model: at most MAX_SHAPE_DIMS dims per tensor."""
        for kind, specs in (("input", self.inputs), ("output", self.outputs)):
            for spec in specs:
                if len(spec.shape) > MAX_SHAPE_DIMS:
                    raise FastexecError(f"Executor: {kind} '{spec.name}' has {len(spec.shape)} dims; a {self.kind} "
                                        f"model's tensors may have at most {MAX_SHAPE_DIMS}")

    def _output_sizes(self, output_size):
        """Bytes of each output buffer: the model's size (its largest gear / the ranges' upper
        bounds), or the user's ``output_size`` (one int for every output, or one per output)."""
        if output_size is None:
            sizes = [spec.nbytes for spec in self.outputs]
        else:
            given = [output_size] if isinstance(output_size, int) else list(output_size)
            if len(given) == 1:
                given = given * len(self.outputs)
            if len(given) != len(self.outputs) or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in given):
                raise ValueError(f"Executor: output_size must be a positive int or one per output "
                                 f"({len(self.outputs)}), got {output_size!r}")
            sizes = given
        for spec, n in zip(self.outputs, sizes):
            if n == 0:
                raise FastexecError(f"Executor: the runtime gives no size for output '{spec.name}' of shape {spec.shape}; "
                                    "pass output_size= (bytes per output buffer)")
        return sizes

    def allowed(self) -> str:
        if self.kind == "dynamic_shape":
            parts = []
            for spec, rng in zip(self.inputs, self.ranges):
                parts.append(f"'{spec.name}' " + "(" + ", ".join(f"{lo}" if lo == hi else f"{lo}..{hi}" for lo, hi in rng) + ")")
            return "ranges: " + "; ".join(parts)
        gears = []
        for gear in self.gears:
            gears.append(" ".join(f"'{spec.name}' {_shape_text(shape)}" for spec, shape in zip(self.inputs, gear)))
        return "gears: " + "; ".join(gears)

    def order_shapes(self, shapes, what):
        """Input shapes given as a dict (input name -> shape) or a sequence in input order, as
        a tuple of int tuples in input order; ValueError / TypeError naming what is wrong."""
        names = [spec.name for spec in self.inputs]
        if isinstance(shapes, dict):
            unknown = [k for k in shapes if k not in names]
            missing = [n for n in names if n not in shapes]
            if unknown or missing:
                wrong = ([f"unknown {unknown}"] if unknown else []) + ([f"missing {missing}"] if missing else [])
                raise ValueError(f"{what}: shapes= must name every input {names}; " + ", ".join(wrong))
            shapes = [shapes[n] for n in names]
        elif isinstance(shapes, (list, tuple)):
            if len(shapes) != len(names):
                raise ValueError(f"{what}: shapes= holds {len(shapes)} shapes; the model has {len(names)} inputs {names}")
        else:
            raise TypeError(f"{what}: shapes= must be a dict (input name -> shape) or a list in input order, "
                            f"got {type(shapes).__name__}")
        ordered = []
        for name, shape in zip(names, shapes):
            try:
                if isinstance(shape, (str, bytes)) or any(isinstance(d, bool) for d in shape):
                    raise TypeError
                dims = tuple(operator.index(d) for d in shape)
            except TypeError:
                raise TypeError(f"{what}: the shape of input '{name}' must be a sequence of ints, got {shape!r}") from None
            ordered.append(dims)
        return tuple(ordered)

    def match(self, arrays):
        """The gear index (dynamic HW / dims) or the input shapes (dynamic shape) of a batch of
        these arrays (already checked for count, dtype and layout); ValueError naming the input,
        its shape and the allowed gears or ranges when they fit none."""
        return self.match_shapes(tuple(tuple(int(d) for d in a.shape) for a in arrays))

    def match_shapes(self, shapes):
        """match() of a batch whose inputs have these shapes (in input order)."""
        for spec, shape in zip(self.inputs, shapes):
            if len(shape) != len(spec.shape):
                raise ValueError(f"input '{spec.name}': expected {len(spec.shape)} dims {_shape_text(spec.shape)}, got "
                                 f"shape {_shape_text(shape)} ({self.allowed()})")
        if self.kind == "dynamic_shape":
            for spec, shape, rng in zip(self.inputs, shapes, self.ranges):
                for axis, (d, (lo, hi)) in enumerate(zip(shape, rng)):
                    if not lo <= d <= hi:
                        raise ValueError(f"input '{spec.name}': shape {_shape_text(shape)} is outside the model's range: "
                                         f"dim {axis} must be in {lo}..{hi} ({self.allowed()})")
            return shapes
        if shapes in self.gears:
            return self.gears.index(shapes)
        bad = next((spec for spec, shape in zip(self.inputs, shapes)
                    if all(g[self.inputs.index(spec)] != shape for g in self.gears)), self.inputs[0])
        given = _shape_text(shapes[self.inputs.index(bad)])
        if len(self.inputs) > 1 and all(any(g[i] == s for g in self.gears) for i, s in enumerate(shapes)):
            shown = ", ".join(f"'{spec.name}' {_shape_text(s)}" for spec, s in zip(self.inputs, shapes))
            raise ValueError(f"inputs {shown}: each shape is in some gear, but no one gear has them all ({self.allowed()})")
        raise ValueError(f"input '{bad.name}': shape {given} is no gear of the model ({self.allowed()})")

    def warm_up_shapes(self):
        """Input shapes of the warm-up batch: the last gear (where every slot starts), or the
        ranges' lower bounds (a dynamic shape: any output_size holds it)."""
        if self.kind == "dynamic_shape":
            return [tuple(lo for lo, _ in rng) for rng in self.ranges]
        return list(self.gears[-1])
