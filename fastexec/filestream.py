"""The streaming core of ``fastexec run``: files are read ahead of the device and written behind
it, on threads of their own, so the device sets the pace.

- Batches are planned up front from the units (batchfiles.plan): units are grouped by their
  sample shapes (one group for a static model), each group packed into batches of the model's
  batch size in unit order; a batch is a list of pieces (a unit's rows at a row of the batch).
- Reader threads take the batches in order. Each reserves the batch's slot (``Executor.staged()``),
  reads the batch's files straight into the slot's pinned input buffers (``.npy`` past its header
  and ``.bin`` with ``os.preadv``, likewise an uncompressed ``.npz`` member; a compressed ``.npz`` and
  Fortran-order arrays through numpy) and queues it.
  Slots are reserved in batch order, so tickets follow batches; the slots bound the memory.
- A collector thread takes each batch's outputs in batch order (``Executor.result``) and hands
  them to the writer thread through a bounded queue; the calling thread only waits, so Ctrl-C
  and SIGTERM land there and never between taking a batch and handing it on.
- The writer writes each unit's outputs as soon as all its rows are in: to ``.<name>.part`` in
  the output folder, then ``os.replace``, so only complete files ever carry an output's name.

A read error stops the reading at that file: the rows before it still run and are written, then
the error (naming the file and its index) is raised. A write error (a full disk) names the file.
Ctrl-C: the batches already on the device are taken (for a short while) and written, then
KeyboardInterrupt is raised; no temporary file stays behind.
"""
from __future__ import annotations

import errno
import io
import os
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from .batchfiles import InputFileError, npy_header, _rows_of
from .errors import BatchError, ClosedError, FastexecError, WaitTimeout

OUTFMTS = ("npy", "bin", "txt")
READERS = 2                 # reader threads; each fills one slot at a time
DRAIN_S = 0.5               # after Ctrl-C: how long batches on the device are waited for


class OutputFileError(FastexecError, OSError):
    """An output file could not be written (e.g. the disk is full)."""


class _Stop(Exception):
    """A reader gives its reserved slot back unqueued: the run is stopping."""


@dataclass
class Piece:
    unit: int        # unit index
    start: int       # first row of the unit in this piece
    n: int           # rows
    at: int          # row of the batch they go to


@dataclass
class Batch:
    index: int
    pieces: list
    rows: int
    shapes: tuple    # per input: the sample shape


def plan_batches(units, batch_size, todo=None) -> list:
    """The batches for the units whose indexes are in `todo` (all by default): units grouped by
    sample shapes (in order of first appearance), each group packed to `batch_size` rows."""
    groups = {}
    for ui in (range(len(units)) if todo is None else todo):
        groups.setdefault(tuple(tuple(s) for s in units[ui].shapes), []).append(ui)
    batches = []
    for shapes, members in groups.items():
        pieces, used = [], 0
        for ui in members:
            start, rows = 0, units[ui].rows
            while start < rows:
                take = min(batch_size - used, rows - start)
                pieces.append(Piece(ui, start, take, used))
                used += take
                start += take
                if used == batch_size:
                    batches.append(Batch(len(batches), pieces, used, shapes))
                    pieces, used = [], 0
        if used:
            batches.append(Batch(len(batches), pieces, used, shapes))
    return batches


# ---------------------------------------------------------------- reading


class _Feed:
    """Reader threads: each takes the next batch, reserves its slot, reads its files into the
    slot's pinned buffers (or, with zero_copy False or a shape other than the model's, into an
    array it submits) and queues it. Results are published per batch: (ticket or None, rows
    queued, the error that stops the run there or None, the error queueing it or None)."""

    def __init__(self, ex, batches, units, specs, readers=READERS, zero_copy=True):
        self.ex, self.batches, self.units, self.specs = ex, batches, units, specs
        self.zero_copy = zero_copy
        self.model_shapes = tuple(tuple(s.shape[1:]) for s in specs)
        self.lock = threading.Lock()          # taking the next batch and reserving its slot, in order
        self.cond = threading.Condition()
        self.published = {}
        self.next = 0
        self.limit = len(batches)             # batches from this index on are not read (a stop, a read error)
        self.busy_s = 0.0                     # summed over readers: reading and decoding
        self.slot_wait_s = 0.0                # summed over readers: waiting for a free slot (the device's pace)
        self.npz = {}                         # unit -> [arrays, rows left to read] for numpy-decoded units
        self.npz_lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, name=f"fastexec-reader-{i}") for i in range(readers)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        """Stop reading (batches being filled are given back unqueued) and wait for the readers."""
        self.limit = 0
        for t in self.threads:
            if t.is_alive():
                t.join()

    def wait(self, index):
        """What the readers did with batch `index`; None if they stopped before it."""
        with self.cond:
            while index not in self.published:
                if not any(t.is_alive() for t in self.threads) and index not in self.published:
                    return None
                self.cond.wait(0.05)
            return self.published.pop(index)

    def _publish(self, index, value):
        with self.cond:
            self.published[index] = value
            self.cond.notify_all()

    def _run(self):
        b = None
        try:
            while True:
                with self.lock:
                    if self.next >= self.limit:
                        return
                    b = self.batches[self.next]
                    self.next += 1
                    direct = self.zero_copy and b.shapes == self.model_shapes
                    t0 = time.perf_counter()
                    staged = self.ex.staged().__enter__() if direct else None
                    self.slot_wait_s += time.perf_counter() - t0
                self._publish(b.index, self._fill(b, staged))
        except BaseException as exc:          # the executor closed under us, or worse: say so at this batch
            self.limit = 0
            if b is not None:
                self._publish(b.index, (None, 0, exc, None))

    def _fill(self, b, staged):
        t0 = time.perf_counter()
        if staged is not None:
            views = staged.inputs
        else:
            views = [np.empty((b.rows,) + tuple(shape), dtype=s.dtype) for s, shape in zip(self.specs, b.shapes)]
        rows, error = b.rows, None
        try:
            for piece in b.pieces:
                try:
                    self._read(piece, views)
                except InputFileError as exc:
                    rows, error = piece.at, exc
                    self.limit = min(self.limit, b.index + 1)
                    break
            if rows < len(views[0]):
                for v in views:
                    v[rows:] = 0              # as the executor pads a short batch
            if b.index >= self.limit or rows == 0:
                raise _Stop()
        except BaseException as exc:
            self.busy_s += time.perf_counter() - t0
            if staged is not None:
                staged.__exit__(type(exc), exc, None)
            if isinstance(exc, _Stop):
                return None, 0, error, None
            raise
        self.busy_s += time.perf_counter() - t0
        try:
            if staged is None:
                return self.ex.submit([v[:rows] for v in views]), rows, error, None
            staged.rows = rows
            staged.__exit__(None, None, None)
        except ClosedError:
            raise
        except FastexecError as exc:          # the batch could not be queued: it fails, the run goes on
            return None, rows, error, exc
        return staged.ticket, rows, error, None

    def _read(self, piece, views):
        unit = self.units[piece.unit]
        decoded = self._decoded(piece) if None in unit.offsets else None
        for i, view in enumerate(views):
            dst = view[piece.at:piece.at + piece.n]
            offset = unit.offsets[i]
            if offset is None:
                dst[...] = decoded[i][piece.start:piece.start + piece.n].reshape(dst.shape)
                continue
            path = unit.paths[i]
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    head = unit.headers[i]
                    if head and os.pread(fd, len(head), offset - len(head)) != head:
                        self._changed(piece.unit, i, "its header changed since the run was planned")
                    mv = memoryview(dst).cast("B")
                    pos = offset + piece.start * (mv.nbytes // piece.n)
                    got = os.preadv(fd, [mv], pos)
                    while got < mv.nbytes:
                        more = os.preadv(fd, [mv[got:]], pos + got)
                        if more == 0:
                            self._changed(piece.unit, i, f"truncated: it ends {mv.nbytes - got} bytes short of "
                                                         f"its {unit.rows} sample(s)")
                        got += more
                finally:
                    os.close(fd)
            except OSError as exc:
                self._changed(piece.unit, i, f"cannot read ({exc.strerror or exc})")

    def _changed(self, ui, i, what):
        unit = self.units[ui]
        path, spec = unit.paths[i], self.specs[i]
        if path.suffix == ".npy":
            try:                              # a header that now says something else: say what
                _, _, shape, _, dtype = npy_header(path)
                _rows_of(shape, dtype, path, spec)
            except InputFileError as exc:
                what = str(exc).split(": ", 1)[1]
        raise InputFileError(f"{path} (input file {ui}): {what}")

    def _decoded(self, piece):
        """The arrays of a numpy-decoded unit (.npz, Fortran order), loaded once while its rows
        are being read."""
        unit = self.units[piece.unit]
        with self.npz_lock:
            entry = self.npz.get(piece.unit)
            if entry is None:
                try:
                    if unit.npz_keys:
                        with np.load(unit.paths[0], allow_pickle=False) as z:
                            arrays = [z[k] for k in unit.npz_keys]
                    else:
                        arrays = [np.load(p, allow_pickle=False) if o is None else None
                                  for p, o in zip(unit.paths, unit.offsets)]
                    arrays = [a.reshape((unit.rows,) + tuple(s)) if a is not None else None
                              for a, s in zip(arrays, unit.shapes)]
                except Exception as exc:
                    raise InputFileError(f"{unit.paths[0]} (input file {piece.unit}): cannot read ({exc})") from None
                entry = self.npz[piece.unit] = [arrays, unit.rows]
            entry[1] -= piece.n
            if entry[1] <= 0:
                del self.npz[piece.unit]
            return entry[0]


# ---------------------------------------------------------------- writing


def _txt_format(dtype) -> str:
    if dtype.kind in "iub":
        return "%d"
    return "%.{}g".format({2: 5, 4: 9, 8: 17}.get(dtype.itemsize, 17))


class _Writer:
    """The writer thread: writes each unit's outputs once all its rows are in, in the order the
    batches arrive; `completed` lists the units written. Its queue is bounded."""

    def __init__(self, units, out_dirs, outfmt, maxsize):
        self.units, self.out_dirs, self.outfmt = units, out_dirs, outfmt
        self.ext = "." + outfmt
        self.q = queue.Queue(maxsize)
        self.completed = []
        self.failed = set()
        self.partial = {}                     # unit -> [per output: list of row chunks], rows in
        self.error = None
        self.busy_s = 0.0
        self.headers = {}
        self.names = [f"{u.stem}{self.ext}" for u in units]
        self.dir_fds = [os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) for d in out_dirs]
        self.thread = threading.Thread(target=self._run, name="fastexec-writer")

    def start(self):
        self.thread.start()

    def put(self, batch, rows, outputs):
        """Hand over batch's outputs (None: the batch failed), waiting while the queue is full;
        raises the writer's error if it failed."""
        while True:
            self.check()
            try:
                self.q.put((batch, rows, outputs), timeout=0.05)
                return
            except queue.Full:
                continue

    def check(self):
        if self.error is not None:
            raise self.error

    def finish(self):
        """Write what was handed over, then stop the thread."""
        while self.thread.is_alive():
            try:
                self.q.put(None, timeout=0.05)
                break
            except queue.Full:
                continue
        self.thread.join()
        self.close()

    def path_of(self, ui, out):
        return self.out_dirs[out] / self.names[ui]

    def _run(self):
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.error is not None:
                continue                      # keep draining so the producer never blocks
            t0 = time.perf_counter()
            try:
                self._take(*item)
            except OutputFileError as exc:
                self.error = exc
            except BaseException as exc:      # never lose a failure silently
                self.error = OutputFileError(f"writing outputs: {type(exc).__name__}: {exc}")
            self.busy_s += time.perf_counter() - t0

    def _take(self, batch, rows, outputs):
        for piece in batch.pieces:
            if piece.at >= rows:
                break
            ui = piece.unit
            if outputs is None:
                self.failed.add(ui)
                self.partial.pop(ui, None)
                continue
            if ui in self.failed:
                continue
            unit = self.units[ui]
            chunks = [o[piece.at:piece.at + piece.n] for o in outputs]
            if piece.n != unit.rows:
                got = self.partial.setdefault(ui, [[[] for _ in outputs], 0])
                for c, part in zip(got[0], chunks):
                    c.append(part)
                got[1] += piece.n
                if got[1] < unit.rows:
                    continue
                chunks = [np.concatenate(c) for c in self.partial.pop(ui)[0]]
            for out, data in enumerate(chunks):
                self._write(ui, out, data[0] if unit.single else data)
            self.completed.append(ui)

    def _write(self, ui, out, data):
        """Write one output file: `.<name>.part` in its folder, then renamed to `<name>`."""
        name = self.names[ui]
        tmp = f".{name}.part"
        if self.outfmt == "npy":
            key = (data.shape, data.dtype.str)
            head = self.headers.get(key)
            if head is None:
                from numpy.lib import format as npformat

                bio = io.BytesIO()
                npformat.write_array_header_1_0(bio, npformat.header_data_from_array_1_0(data))
                head = self.headers[key] = bio.getvalue()
            parts = [head, memoryview(np.ascontiguousarray(data)).cast("B")]
        elif self.outfmt == "bin":
            parts = [memoryview(np.ascontiguousarray(data)).cast("B")]
        else:
            bio = io.BytesIO()
            table = data.reshape(1, 1) if data.ndim == 0 else data.reshape(-1, data.shape[-1]) if data.ndim > 1 \
                else data.reshape(1, -1)
            np.savetxt(bio, table, fmt=_txt_format(data.dtype))
            parts = [bio.getvalue()]
        dir_fd = self.dir_fds[out]
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
            try:
                done = os.writev(fd, parts)
                if done < sum(map(len, parts)):                  # (a short write: write the rest)
                    rest = memoryview(b"".join(bytes(p) for p in parts))[done:]
                    while rest.nbytes:
                        rest = rest[os.write(fd, rest):]
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError as exc:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
            path = self.path_of(ui, out)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise OutputFileError(f"{path}: cannot write: the disk is full ({exc.strerror})") from None
            raise OutputFileError(f"{path}: cannot write ({exc.strerror or exc})") from None

    def close(self):
        for fd in self.dir_fds:
            os.close(fd)
        self.dir_fds = []


# ---------------------------------------------------------------- the run


def stream(ex, units, specs, out_dirs, outfmt="npy", todo=None, progress=None, readers=READERS,
           zero_copy=True) -> dict:
    """Run the units (those in `todo`, all by default) through the executor and write their
    outputs. Returns the figures: wall_s (first read to last file written), batches, samples,
    `completed` (units written, in the order written), `failed` ((unit, error) of failed
    batches, in unit order), and the threads' busy times. A read error (InputFileError) or a
    write error (OutputFileError) is raised once everything before it is written; Ctrl-C raises
    KeyboardInterrupt once the batches on the device are written (DRAIN_S at most); the figures
    are then on the exception as `.figures`.

    The calling thread only waits (so Ctrl-C and SIGTERM land there); the collector thread
    takes the outputs in batch order and hands them to the writer."""
    batches = plan_batches(units, ex.batch_size, todo)
    feed = _Feed(ex, batches, units, specs, readers, zero_copy)
    writer = _Writer(units, out_dirs, outfmt, maxsize=2 * ex.depth * ex.instances)
    collector = _Collector(ex, feed, batches, writer)
    t0 = time.perf_counter()
    raised = None
    shown = 0
    feed.start()
    writer.start()
    collector.start()
    try:
        try:
            while collector.thread.is_alive():
                collector.thread.join(0.05)
                if progress is not None and collector.samples > shown:
                    progress.update(collector.samples - shown)
                    shown = collector.samples
        except KeyboardInterrupt:
            collector.deadline = time.perf_counter() + DRAIN_S
            raise
        finally:
            feed.join()
            collector.thread.join()
            writer.finish()
        if collector.error is not None:
            raise collector.error
        writer.check()
    except BaseException as exc:
        raised = exc
        raise
    finally:
        written = set(writer.completed)
        figures = {"wall_s": time.perf_counter() - t0, "batches": len(batches), "samples": collector.samples,
                   "completed": list(writer.completed),
                   "failed": sorted((ui, e) for ui, e in collector.failures.items() if ui not in written),
                   "readers": len(feed.threads), "read_busy_s": feed.busy_s, "slot_wait_s": feed.slot_wait_s,
                   "writers": 1, "write_busy_s": writer.busy_s, "result_wait_s": collector.wait_s}
        if raised is not None:
            raised.figures = figures
    return figures


class _Collector:
    """Takes each batch's outputs in batch order (Executor.result) and hands them to the writer;
    stops at a read error, a write error, the readers stopping, or `deadline` (set on Ctrl-C)."""

    def __init__(self, ex, feed, batches, writer):
        self.ex, self.feed, self.batches, self.writer = ex, feed, batches, writer
        self.deadline = None
        self.samples = 0
        self.wait_s = 0.0
        self.failures = {}                    # unit -> the error of its failed batch
        self.error = None
        self.thread = threading.Thread(target=self._run, name="fastexec-collector")

    def start(self):
        self.thread.start()

    def _run(self):
        try:
            for b in self.batches:
                value = self.feed.wait(b.index)
                if value is None:
                    return
                ticket, rows, error, failure = value
                if failure is not None:
                    self._fail(b, rows, failure)
                    self.writer.put(b, rows, None)
                if ticket is not None:
                    t0 = time.perf_counter()
                    timeout = None if self.deadline is None else max(0.0, self.deadline - t0)
                    try:
                        outputs = self.ex.result(ticket, timeout=timeout)
                    except BatchError as exc:
                        outputs = None
                        self._fail(b, rows, exc.error)
                    except WaitTimeout:
                        return                # stopping: what is still on the device is not waited for
                    self.wait_s += time.perf_counter() - t0
                    self.writer.put(b, rows, outputs)
                    self.samples += rows
                if error is not None:
                    self.error = error
                    return
                if self.deadline is not None and time.perf_counter() > self.deadline:
                    return
        except BaseException as exc:
            self.error = exc
        finally:
            self.feed.limit = 0               # nothing more is taken: the readers stop

    def _fail(self, b, rows, error):
        for p in b.pieces:
            if p.at < rows:
                self.failures.setdefault(p.unit, error)
