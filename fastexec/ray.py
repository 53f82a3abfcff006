"""Distributed batch inference with Ray Data: ``Dataset.map_batches(fastexec.ray.Predictor, ...)``.

Each actor of the pool opens one :class:`fastexec.Executor` on the NPU(s) Ray gave it and keeps
it for its whole life; every batch Ray hands it goes through that executor's pipeline (split
into model batches, the last one padded; outputs in row order), reusing the same pinned staging
buffers call after call::

    ds.map_batches(fastexec.ray.Predictor, fn_constructor_kwargs={"model": "resnet50.om"},
                   concurrency=2, resources={"NPU": 1}, batch_size=256)

Which device: Ray schedules Ascend NPUs as the resource ``NPU`` and, for a worker that holds
some, sets ``ASCEND_RT_VISIBLE_DEVICES`` to their ids before the actor starts
(``ray.get_runtime_context().get_accelerator_ids()["NPU"]`` lists the same ids), so the ACL
runtime in that process sees only them, numbered from 0. With
``RAY_EXPERIMENTAL_NOSET_ASCEND_RT_VISIBLE_DEVICES=1`` Ray leaves the variable alone and the
ids are used as they are. On the bundled emulator (no CANN), the actor's emulator is made to
emulate enough devices for those ids (emulate_npus). docs/ray.md has a whole pipeline and how
to size the pool.

This module needs Ray Data (``pip install "fastexec[ray]"``); ``import fastexec`` never imports it.
"""
from __future__ import annotations

import os

import numpy as np

try:
    import ray
except ImportError as exc:   # pragma: no cover - depends on the environment
    raise ImportError('fastexec.ray needs Ray Data: pip install "fastexec[ray]"') from exc

import fastexec
from .errors import BatchError

VISIBLE_DEVICES = "ASCEND_RT_VISIBLE_DEVICES"
EMULATED_DEVICES = "FASTEXEC_EMU_DEVICES"

__all__ = ["Predictor", "RowsFailed", "assigned_npus", "acl_devices", "emulate_npus"]


def assigned_npus() -> list:
    """The NPU ids Ray gave the calling worker (strings, as Ray reports them); [] outside Ray
    or without NPU resources."""
    if not ray.is_initialized():
        return []
    return list(ray.get_runtime_context().get_accelerator_ids().get("NPU", []))


def acl_devices(npus) -> list:
    """The ACL device ids of Ray NPU ids in this process: their positions in
    ASCEND_RT_VISIBLE_DEVICES when it is set (the runtime renumbers the visible devices from 0),
    else the ids themselves."""
    visible = os.environ.get(VISIBLE_DEVICES)
    if not visible:
        return [int(i) for i in npus]
    order = [v.strip() for v in visible.split(",")]
    missing = [str(i) for i in npus if str(i) not in order]
    if missing:
        raise RuntimeError(f"fastexec.ray: Ray gave this worker NPU {', '.join(missing)}, but "
                           f"{VISIBLE_DEVICES}={visible!r} hides it from the ACL runtime")
    return [order.index(str(i)) for i in npus]


def emulate_npus(npus) -> None:
    """Where the bundled emulator stands in for CANN, it emulates one device unless told
    otherwise, so an actor given NPU 3 would find no device 3 behind ASCEND_RT_VISIBLE_DEVICES=3.
    Before the ACL runtime loads, make the emulator's device count (FASTEXEC_EMU_DEVICES, read
    only by the emulator) cover the NPU ids, unless it is set. A CANN runtime ignores it."""
    if EMULATED_DEVICES in os.environ or not npus or not all(str(i).isdigit() for i in npus):
        return
    os.environ[EMULATED_DEVICES] = str(max(int(i) for i in npus) + 1)


class RowsFailed(BatchError):
    """Model batches of one Ray batch failed on the device. ``rows``: the (start, stop) row
    ranges of the Ray batch that have no output; ``ids``: their values of the ``id_column``
    (None without one); ``index`` and ``error``: the first failed model batch and its AclError;
    ``devices``: where the predictor ran (ACL ids) and ``npus``: Ray's ids of them."""

    def __init__(self, index, error, rows, n_rows, devices, npus, ids=None):
        super().__init__(index, error)
        self.rows = [tuple(r) for r in rows]
        self.n_rows = n_rows
        self.devices = list(devices)
        self.npus = list(npus)
        self.ids = ids

    def __str__(self) -> str:
        spans = ", ".join(f"{a}..{b - 1}" for a, b in self.rows)
        where = f"NPU {','.join(map(str, self.npus))}" if self.npus else f"device {','.join(map(str, self.devices))}"
        text = f"rows {spans} of a Ray batch of {self.n_rows} rows failed on {where}: {self.error}"
        if self.ids is not None:
            shown = ", ".join(map(str, self.ids[:16])) + (", ..." if len(self.ids) > 16 else "")
            text += f" (ids: {shown})"
        return text

    def __reduce__(self):
        return (type(self), (self.index, self.error, self.rows, self.n_rows, self.devices, self.npus, self.ids))


class Predictor:
    """A Ray Data callable class: ``__init__`` opens an executor, ``__call__`` runs one batch.

    ``Predictor(model, devices=None, instances=1, depth=None, mode="overlap", outputs=None,
    cast="safe", id_column=None)``: `model` a .om path (or bytes); `devices` the ACL device ids
    (default: the NPUs Ray gave this actor, or device 0 outside Ray); `instances`, `depth`,
    `mode` as for :class:`fastexec.Executor`; `outputs` maps model output names to column names
    (default: the output names); `cast` the numpy casting rule a column of another dtype than
    its input must satisfy to be converted ("safe": no loss; "no": the dtype must match);
    `id_column` a column whose values name the rows of a failed batch.

    A batch is a dict of numpy arrays (Ray's default), a pandas DataFrame or a pyarrow Table
    with one column per model input, named after it, axis 0 the rows (any number of them).
    Returned: a dict of numpy arrays, every column of the batch (as given) and one per model
    output. Columns already of the input's dtype and C-contiguous are used without a copy. A
    failed model batch raises :class:`RowsFailed` naming its rows."""

    def __init__(self, model, devices=None, instances=1, depth=None, mode="overlap", outputs=None, cast="safe",
                 id_column=None):
        if cast not in ("no", "equiv", "safe", "same_kind", "unsafe"):
            raise ValueError(f"Predictor: cast must be a numpy casting rule (no, equiv, safe, same_kind, unsafe), got {cast!r}")
        self.npus = assigned_npus() if devices is None else []
        if devices is None:
            emulate_npus(self.npus)
            devices = acl_devices(self.npus) if self.npus else [0]
        self.executor = fastexec.Executor(model, devices=devices, instances=instances, depth=depth, mode=mode)
        self.devices = self.executor.devices
        names = [s.name for s in self.executor.outputs]
        outputs = dict(outputs or {})
        unknown = sorted(set(outputs) - set(names))
        if unknown:
            self.executor.close()
            raise ValueError(f"Predictor: outputs names {', '.join(unknown)}, not outputs of the model "
                             f"({', '.join(names)})")
        self.columns = [outputs.get(n, n) for n in names]
        if len(set(self.columns)) != len(self.columns):
            self.executor.close()
            raise ValueError(f"Predictor: two outputs map to one column ({self.columns})")
        self.cast = cast
        self.id_column = id_column

    def __call__(self, batch):
        columns = _numpy_columns(batch)
        clash = [c for c in self.columns if c in columns]
        if clash:
            raise ValueError(f"Predictor: the batch already has a column {clash[0]!r} for the model's output; "
                             "name the output columns with outputs={...}")
        arrays = [self._input(columns, spec) for spec in self.executor.inputs]
        n = arrays[0].shape[0]
        result = dict(columns)
        if n == 0:
            for spec, col in zip(self.executor.outputs, self.columns):
                result[col] = np.empty((0,) + tuple(spec.shape[1:]), spec.dtype)
            return result
        try:
            outs = self.executor.run(arrays)
        except BatchError as exc:
            raise self._failure(exc, n, columns) from exc
        for col, arr in zip(self.columns, outs):
            result[col] = arr
        return result

    def _input(self, columns, spec):
        if spec.name not in columns:
            raise KeyError(f"Predictor: the batch has no column {spec.name!r} for the model input of that name "
                           f"(columns: {', '.join(map(str, columns))})")
        a = columns[spec.name]
        if a.dtype == object:    # a column of per-row arrays (pandas, lists)
            a = np.stack(list(a)) if len(a) else np.empty((0,) + tuple(spec.shape[1:]), spec.dtype)
        if a.dtype != spec.dtype:
            if not np.can_cast(a.dtype, spec.dtype, casting=self.cast):
                raise TypeError(f"Predictor: column {spec.name!r} is {a.dtype}, the model input is {spec.dtype}, and "
                                f"casting={self.cast!r} does not allow that conversion; convert it in a preprocessing "
                                f"step, or pass cast='same_kind' / 'unsafe'")
            a = a.astype(spec.dtype)
        sample = tuple(spec.shape[1:])
        if a.shape[1:] != sample:
            raise ValueError(f"Predictor: column {spec.name!r} has rows of shape {a.shape[1:]}, the model input "
                             f"{spec.name!r} takes rows of shape {sample}")
        return np.ascontiguousarray(a)

    def _failure(self, exc, n, columns):
        B = self.executor.batch_size
        done = set(exc.completed)
        failed = [b for b in range(-(-n // B)) if b not in done]
        rows = [(b * B, min(n, (b + 1) * B)) for b in failed]
        ids = None
        if self.id_column is not None and self.id_column in columns:
            col = columns[self.id_column]
            ids = [v.item() if hasattr(v, "item") else v for a, b in rows for v in col[a:b]]
        return RowsFailed(exc.index, exc.error, rows, n, self.devices, self.npus, ids)

    def close(self):
        """Close the executor (Ray ends the actor's process anyway)."""
        self.executor.close()


def _numpy_columns(batch) -> dict:
    """A batch as a dict of numpy arrays: a dict is used as it is (its values through
    numpy.asarray, no copy for arrays); pandas and pyarrow batches are converted by Ray Data
    itself, as it would for batch_format="numpy" (tensor columns become n-dimensional arrays)."""
    if isinstance(batch, dict):
        return {k: np.asarray(v) for k, v in batch.items()}
    from ray.data.block import BlockAccessor

    return dict(BlockAccessor.for_block(batch).to_batch_format("numpy"))
