"""Validation of what callers hand the executor: a model's tensors, input batches and output
arrays. Every check names the tensor, what was expected and what was given, and runs before
anything is queued."""
import math

import numpy as np

from .errors import FastexecError

MAX_IO = 64


def row_bytes(spec) -> int:
    """Bytes of one row of a tensor: its sample shape times its item size."""
    return math.prod(spec.shape[1:]) * spec.dtype.itemsize


def check_model(model, batch_size: int):
    """The checks the executor needs of a model's tensors; returns (input rows, output rows)
    in bytes."""
    source = model.source
    if batch_size < 1:
        raise FastexecError(f"Executor: cannot tell the batch size of {source} (axis 0 of input 0 is {batch_size})")
    if len(model.inputs) > MAX_IO or len(model.outputs) > MAX_IO:
        raise FastexecError(f"Executor: at most {MAX_IO} inputs and {MAX_IO} outputs "
                            f"(the model has {len(model.inputs)} and {len(model.outputs)})")
    rows = []
    for kind, specs in (("input", model.inputs), ("output", model.outputs)):
        sizes = []
        for spec in specs:
            if not spec.shape or spec.shape[0] not in (-1, batch_size):
                raise FastexecError(f"Executor: {kind} '{spec.name}' has shape {spec.shape}; the executor needs the batch "
                                    f"({batch_size}) on axis 0 of every input and output")
            if any(d < 0 for d in spec.shape[1:]):
                raise FastexecError(f"Executor: {kind} '{spec.name}' has shape {spec.shape}; only axis 0 may be dynamic")
            row = row_bytes(spec)
            if row * batch_size > spec.nbytes:
                raise FastexecError(f"Executor: {kind} '{spec.name}' of shape {spec.shape} and dtype {spec.dtype} needs "
                                    f"{row * batch_size} bytes per batch, but the model gives it {spec.nbytes}")
            sizes.append(row)
        rows.append(sizes)
    return rows[0], rows[1]


def check_same_model(first, other, instance: int):
    """Every instance must describe the same tensors as the first."""
    for kind in ("inputs", "outputs"):
        a, b = getattr(first, kind), getattr(other, kind)
        if a != b:
            raise FastexecError(f"Executor: instance {instance} of {other.source} has {kind} {b}, "
                                f"but instance 0 has {a}")
    if first.batch_size != other.batch_size or first.dynamic_batch != other.dynamic_batch:
        raise FastexecError(f"Executor: instance {instance} has batch {other.batch_size} (gears {other.dynamic_batch}), "
                            f"instance 0 has {first.batch_size} (gears {first.dynamic_batch})")


def order_inputs(specs, inputs, batch_size: int, whole: bool, shaped: bool = False) -> list:
    """Inputs (a list in input order, a dict by name, or one array for a single-input model) as
    one C-contiguous array per model input, all with the same rows; at most `batch_size` rows
    unless `whole`. `shaped` (a dynamic HW / dims / shape model): the shapes are left to the
    model's profile (fastexec._profile)."""
    names = [s.name for s in specs]
    if isinstance(inputs, dict):
        unknown = [k for k in inputs if k not in names]
        if unknown:
            raise ValueError(f"unknown input {unknown[0]!r}; the model's inputs are {', '.join(names)}")
        missing = [n for n in names if n not in inputs]
        if missing:
            raise ValueError(f"missing input {missing[0]!r}; the model's inputs are {', '.join(names)}")
        arrays = [inputs[n] for n in names]
    elif isinstance(inputs, (list, tuple)):
        arrays = list(inputs)
        if len(arrays) != len(specs):
            raise ValueError(f"expected {len(specs)} input(s) ({', '.join(names)}), got {len(arrays)}")
    else:
        if len(specs) != 1:
            raise ValueError(f"the model has {len(specs)} inputs ({', '.join(names)}); pass a list or a dict, "
                             f"got a single {type(inputs).__module__}.{type(inputs).__name__}")
        arrays = [inputs]
    rows = None
    for spec, a in zip(specs, arrays):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"input '{spec.name}': expected a numpy array, got {type(a).__name__}")
        sample = tuple(spec.shape[1:])
        if a.dtype != spec.dtype:
            raise TypeError(f"input '{spec.name}': expected dtype {spec.dtype}, got {a.dtype}")
        if shaped:
            if not a.flags.c_contiguous:
                raise ValueError(f"input '{spec.name}': the array is not C-contiguous; pass numpy.ascontiguousarray(...)")
            if a.size == 0:
                raise ValueError(f"input '{spec.name}': the batch is empty")
            continue
        if a.ndim != len(spec.shape) or a.shape[1:] != sample:
            want = "(N, " + ", ".join(map(str, sample)) + ")" if sample else "(N,)"
            raise ValueError(f"input '{spec.name}': expected shape {want}, got {tuple(a.shape)}")
        if not a.flags.c_contiguous:
            raise ValueError(f"input '{spec.name}': the array is not C-contiguous; pass numpy.ascontiguousarray(...)")
        n = a.shape[0]
        if n == 0:
            raise ValueError(f"input '{spec.name}': the batch is empty")
        if not whole and n > batch_size:
            raise ValueError(f"input '{spec.name}': a batch holds at most {batch_size} rows, got {n}")
        if rows is None:
            rows = n
        elif n != rows:
            raise ValueError(f"input '{spec.name}' has {n} rows but '{specs[0].name}' has {rows}")
    return arrays


def output_arrays(specs, out, n: int, in_specs, inputs) -> list:
    """Arrays for `n` rows of each output: new ones, or the caller's `out` (a list in output
    order, a dict by name, or one array), checked for dtype, shape, layout and for not
    overlapping any input."""
    if out is None:
        return [np.empty((n,) + tuple(s.shape[1:]), dtype=s.dtype) for s in specs]
    names = [s.name for s in specs]
    if isinstance(out, dict):
        unknown = [k for k in out if k not in names]
        if unknown or len(out) != len(names):
            raise ValueError(f"out: expected arrays for the outputs {', '.join(names)}, got {', '.join(map(str, out))}")
        out = [out[k] for k in names]
    elif isinstance(out, np.ndarray):
        out = [out]
    out = list(out)
    if len(out) != len(specs):
        raise ValueError(f"out: expected {len(specs)} array(s) ({', '.join(names)}), got {len(out)}")
    for spec, a in zip(specs, out):
        want = (n,) + tuple(spec.shape[1:])
        if not isinstance(a, np.ndarray) or a.dtype != spec.dtype or a.shape != want:
            got = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
            raise ValueError(f"out '{spec.name}': expected a {spec.dtype} array of shape {want}, got {got}")
        if not a.flags.c_contiguous or not a.flags.writeable:
            raise ValueError(f"out '{spec.name}': the array must be C-contiguous and writable")
        for ispec, x in zip(in_specs, inputs):
            if np.may_share_memory(a, x):
                raise ValueError(f"out '{spec.name}' overlaps the memory of input '{ispec.name}'; the executor reads "
                                 "inputs while it writes outputs, so pass separate arrays")
    for i, a in enumerate(out):
        for j in range(i):
            if np.may_share_memory(a, out[j]):
                raise ValueError(f"out '{specs[i].name}' overlaps out '{specs[j].name}'; pass separate arrays")
    return out
