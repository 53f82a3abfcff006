"""Batch inference over files (``fastexec run``): planning the inputs, the output folder and
its manifest. The streaming itself (reader, collector and writer threads) is filestream.py.

Inputs, one source per model input (by position, or ``NAME=PATH`` by name), each:
- a ``.npy`` file: one array of N samples (shape ``(N, *sample)``) or one sample;
- a folder of ``.npy`` or ``.bin`` files, taken in sorted name order: each file holds one sample
  or several (``.bin``: raw bytes of the input's dtype, a whole number of samples);
or a single ``.npz`` holding every input, by name (or ``arr_0``, ``arr_1``... by position).
With several inputs, the i-th file of each folder belong together and must hold as many samples.

Each input file (or group of files, one per input) is a *unit*; plan() checks every unit from
its headers (and sizes) before any device work, and records where each file's raw data starts.
Its outputs are ``OUT/<output name>/<stem>.<fmt>``, where ``<stem>`` is the input file's name
without its extension: within each output folder, sorted output names follow sorted input names.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path


from ._files import write_atomic
from .errors import FastexecError


class InputFileError(FastexecError, ValueError):
    """An input file or folder does not fit the model (or cannot be read)."""


@dataclass
class Unit:
    """One input file, or the files that go together across the model's inputs."""

    stem: str
    paths: list            # one per model input (the same .npz for all, for an .npz unit)
    rows: int
    npz_keys: list = field(default_factory=list)
    single: bool = False   # the files hold one sample without a batch axis: so do the outputs
    offsets: list = field(default_factory=list)   # per input: where the raw C-order data starts, or
                                                  # None (compressed .npz, Fortran order): decoded by numpy
    headers: list = field(default_factory=list)   # per input: the .npy header bytes planned, just before
                                                  # the data (b"" for .bin)
    shapes: list = field(default_factory=list)    # per input: the sample shape (the batch's shape key)


def _sample_shape(spec):
    return tuple(spec.shape[1:])


_HEADERS = {}        # .npy header bytes -> (shape, fortran_order, dtype): one parse per distinct header


def npy_header(path) -> tuple:
    """(header bytes, data offset, shape, fortran_order, dtype) of a .npy file, read with two
    small reads and parsed by numpy.lib.format; checks that the file holds all its data.
    Raises InputFileError."""
    try:
        with open(path, "rb", buffering=0) as f:
            head = f.read(256)
            if len(head) < 10 or head[:6] != b"\x93NUMPY":
                raise ValueError("not a .npy file (no NUMPY magic)")
            major = head[6]
            if major == 1:
                offset = 10 + int.from_bytes(head[8:10], "little")
            elif major in (2, 3):
                offset = 12 + int.from_bytes(head[8:12], "little")
            else:
                raise ValueError(f"unknown .npy format version {major}")
            if offset > len(head):
                head += f.read(offset - len(head))
            head = head[:offset]
            size = os.fstat(f.fileno()).st_size
        parsed = _HEADERS.get(head)
        if parsed is None:
            import io
            from numpy.lib import format as npformat

            bio = io.BytesIO(head)
            read = npformat.read_array_header_1_0 if npformat.read_magic(bio)[0] == 1 else npformat.read_array_header_2_0
            shape, fortran, dtype = read(bio, max_header_size=1 << 20)
            if dtype.hasobject:
                raise ValueError("holds Python objects (pickles are never loaded)")
            parsed = _HEADERS[head] = (tuple(shape), bool(fortran), dtype)
    except InputFileError:
        raise
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except Exception as exc:
        raise InputFileError(f"{path}: cannot read as .npy ({exc})") from None
    shape, fortran, dtype = parsed
    want = offset + math.prod(shape) * dtype.itemsize
    if size < want:
        raise InputFileError(f"{path}: cannot read as .npy (truncated: {size} bytes, its header announces {want})")
    return head, offset, shape, fortran, dtype


def _npy_rows(path: Path, spec):
    head, offset, shape, fortran, dtype = npy_header(path)
    rows, single = _rows_of(shape, dtype, path, spec)
    return rows, single, (None if fortran and len(shape) > 1 else offset), head, (shape if single else shape[1:])


def _rows_of(shape, dtype, where, spec):
    """(samples, single): how many samples the array holds, and whether it is one sample
    without a batch axis."""
    sample = _sample_shape(spec)
    if dtype != spec.dtype:
        raise InputFileError(f"{where}: input '{spec.name}' expects dtype {spec.dtype}, the file holds {dtype}")
    if tuple(shape) == sample:
        return 1, True
    if len(shape) == len(sample) + 1 and tuple(shape[1:]) == sample and shape[0] > 0:
        return int(shape[0]), False
    want = ", ".join(map(str, sample))
    raise InputFileError(f"{where}: input '{spec.name}' expects samples of shape ({want}) or (N, {want}), "
                         f"the file holds {tuple(shape)}")


def _bin_rows(path: Path, spec):
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read ({exc.strerror})") from None
    sample_bytes = math.prod(_sample_shape(spec)) * spec.dtype.itemsize
    if size == 0 or size % sample_bytes:
        raise InputFileError(f"{path}: {size} bytes is not a whole number of samples of input '{spec.name}' "
                             f"({sample_bytes} bytes each, {spec.dtype} {_sample_shape(spec)})")
    return size // sample_bytes, size == sample_bytes, 0, b"", None


def _files_of(folder: Path, spec) -> list:
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise InputFileError(f"{folder}: cannot list ({exc.strerror})") from None
    files = [folder / n for n in names if n.endswith((".npy", ".bin")) and (folder / n).is_file()]
    if not files:
        raise InputFileError(f"{folder}: no .npy or .bin files for input '{spec.name}'")
    kinds = {f.suffix for f in files}
    if len(kinds) > 1:
        raise InputFileError(f"{folder}: mixes .npy and .bin files; use one kind per folder")
    return files


def _check_readable(path: Path):
    if not path.exists():
        raise InputFileError(f"{path}: no such file or folder")
    if not os.access(path, os.R_OK):
        raise InputFileError(f"{path}: not readable")


def plan(specs, sources, limit=None) -> list:
    """Check every input against the model (dtype, sample shape, sizes, pairing) without
    reading the data, and return the units in order. Raises InputFileError."""
    names = [s.name for s in specs]
    if len(sources) == 1 and str(sources[0]).endswith(".npz") and "=" not in str(sources[0]):
        return _plan_npz(specs, Path(sources[0]))[:limit]
    by_name = {}
    positional = []
    for src in sources:
        src = str(src)
        name, sep, path = src.partition("=")
        if sep and name in names:
            if name in by_name:
                raise InputFileError(f"input '{name}' is given twice")
            by_name[name] = path
        elif sep and not os.path.exists(src):
            raise InputFileError(f"unknown input '{name}' in '{src}'; the model's inputs are {', '.join(names)}")
        else:
            positional.append(src)
    if by_name and positional:
        raise InputFileError("give every input by name (NAME=PATH) or every input by position, not a mix")
    if by_name:
        missing = [n for n in names if n not in by_name]
        if missing:
            raise InputFileError(f"no source for input '{missing[0]}'; the model's inputs are {', '.join(names)}")
        paths = [Path(by_name[n]) for n in names]
    else:
        if len(positional) != len(specs):
            raise InputFileError(f"the model has {len(specs)} input(s) ({', '.join(names)}); got {len(positional)} source(s)")
        paths = [Path(p) for p in positional]
    per_input = []
    for spec, path in zip(specs, paths):
        _check_readable(path)
        if path.is_file() and path.suffix not in (".npy", ".bin"):
            raise InputFileError(f"{path}: input '{spec.name}' takes a .npy or .bin file or a folder of them"
                                 + (" (an .npz must be the only --input and hold every input)" if path.suffix == ".npz" else ""))
        files = _files_of(path, spec) if path.is_dir() else [path]
        rows = [(_npy_rows(f, spec) if f.suffix == ".npy" else _bin_rows(f, spec)) for f in files[:limit]]
        if files[0].suffix == ".bin":
            # raw bytes carry no shape: a folder of one-sample files is per-sample, any other per-batch
            per_sample = all(r[0] == 1 for r in rows)
            rows = [(r[0], per_sample) + r[2:] for r in rows]
        per_input.append((files[:limit], rows))
    first_files, first_rows = per_input[0]
    for spec, (files, rows) in zip(specs[1:], per_input[1:]):
        if len(files) != len(first_files):
            raise InputFileError(f"input '{spec.name}' has {len(files)} file(s), input '{specs[0].name}' has {len(first_files)}")
        for f0, f, r0, r in zip(first_files, files, first_rows, rows):
            if r[0] != r0[0]:
                raise InputFileError(f"{f}: {r[0]} sample(s), but {f0} (input '{specs[0].name}') has {r0[0]}")
    return [Unit(stem=f.stem, paths=[files[i] for files, _ in per_input], rows=first_rows[i][0],
                 single=all(rows[i][1] for _, rows in per_input),
                 offsets=[rows[i][2] for _, rows in per_input], headers=[rows[i][3] for _, rows in per_input],
                 shapes=[rows[i][4] or _sample_shape(s) for s, (_, rows) in zip(specs, per_input)])
            for i, f in enumerate(first_files)]


def _npz_member(zf, path: Path, key: str) -> tuple:
    """(shape, dtype, single-file offset of the raw data or None, its .npy header bytes) of the
    member `key` of an open .npz (zipfile.ZipFile), read from its header only. A member stored
    uncompressed (np.savez) in C order gets its data offset: it is read like a .npy file."""
    from numpy.lib import format as npformat

    info = zf.getinfo(key + ".npy")
    with zf.open(info) as f:
        major, _ = npformat.read_magic(f)
        read = npformat.read_array_header_1_0 if major == 1 else npformat.read_array_header_2_0
        shape, fortran, dtype = read(f, max_header_size=1 << 20)
        head_len = f.tell()
    if dtype.hasobject:
        raise ValueError(f"member {key} holds Python objects (pickles are never loaded)")
    offset = head = None
    if info.compress_type == 0 and not (fortran and len(shape) > 1):
        with open(path, "rb") as f:
            f.seek(info.header_offset)
            local = f.read(30)
            start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + \
                int.from_bytes(local[28:30], "little")
            f.seek(start)
            head = f.read(head_len)
        offset = start + head_len
    return tuple(shape), dtype, offset, head


def _plan_npz(specs, path: Path) -> list:
    _check_readable(path)
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            keys = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
            names = [s.name for s in specs]
            if all(n in keys for n in names):
                use = names
            elif all(f"arr_{i}" in keys for i in range(len(specs))):
                use = [f"arr_{i}" for i in range(len(specs))]
            else:
                raise InputFileError(f"{path}: holds {', '.join(keys) or 'nothing'}; expected the model's inputs "
                                     f"{', '.join(names)} (or arr_0..arr_{len(specs) - 1})")
            members = [_npz_member(zf, path, k) for k in use]
    except InputFileError:
        raise
    except Exception as exc:
        raise InputFileError(f"{path}: cannot read as .npz ({exc})") from None
    rows = [_rows_of(shape, dtype, f"{path}[{k}]", s) for (shape, dtype, _, _), k, s in zip(members, use, specs)]
    if len({r for r, _ in rows}) != 1:
        raise InputFileError(f"{path}: the inputs hold different numbers of samples ({', '.join(str(r) for r, _ in rows)})")
    return [Unit(stem=path.stem, paths=[path] * len(specs), rows=rows[0][0], npz_keys=use,
                 single=all(single for _, single in rows), offsets=[m[2] for m in members],
                 headers=[m[3] or b"" for m in members], shapes=[_sample_shape(s) for s in specs])]


def output_dirs(out_dir, out_specs) -> list:
    """Create OUT/<output name>/ for each output (names made file-system safe); checks that
    they can be written. Raises InputFileError."""
    out_dir = Path(out_dir)
    dirs = []
    used = set()
    for spec in out_specs:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", spec.name)
        if not safe.strip("."):           # "", ".", ".." would not be a folder inside OUT
            safe = "_" + safe
        while safe in used:
            safe += "_"
        used.add(safe)
        d = out_dir / safe
        try:
            d.mkdir(parents=True, exist_ok=True)
            probe = d / ".fastexec-write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise InputFileError(f"{d}: cannot write outputs there ({exc.strerror or exc})") from None
        dirs.append(d)
    return dirs


# ---------------------------------------------------------------- the output folder and its manifest


def prepare_output(out_dir, force: bool, manifest_name: str) -> None:
    """Before any work: OUT must be new or empty; with `force`, a folder an earlier run wrote
    (everything in it listed by its manifest) is emptied first. Raises InputFileError."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputFileError(f"{out}: cannot write outputs there (not a folder)")
    if not out.exists():
        parent = out.absolute().parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise InputFileError(f"{out}: cannot write outputs there: cannot create it ({parent} is not a writable "
                                 "folder)")
        return
    if not os.access(out, os.W_OK | os.X_OK):
        raise InputFileError(f"{out}: cannot write outputs there (not writable)")
    present = sorted(p for p in out.rglob("*"))
    if not present:
        return
    if not force:
        raise InputFileError(f"{out}: not empty ({len(present)} entries); outputs of two runs would mix. Choose a new "
                             f"folder, pass --resume to continue the earlier fastexec run there, or --force to replace what it "
                             f"wrote (only what its {manifest_name} lists)")
    mf = out / manifest_name
    try:
        manifest = json.loads(mf.read_text())
        files = {out / f for f in manifest["files"]}
        folders = {out / d for d in manifest["folders"]}
    except (OSError, ValueError, KeyError, TypeError):
        raise InputFileError(f"{out}: --force refused: it holds no readable {manifest_name} (it was not written by "
                             f"fastexec run), so nothing there is removed") from None
    stray = [p for p in present if p != mf and p not in files and p not in folders
             and not (p.name.endswith(".part") and p.parent in folders)]
    if stray:
        shown = ", ".join(str(p.relative_to(out)) for p in stray[:5]) + (" ..." if len(stray) > 5 else "")
        raise InputFileError(f"{out}: --force refused: it holds {len(stray)} entries the earlier run's {manifest_name} "
                             f"does not list ({shown}); nothing was removed")
    for p in present:
        if p.is_file() or p.is_symlink():
            p.unlink()
    for d in sorted(folders, key=lambda d: len(d.parts), reverse=True):
        if d.is_dir():
            d.rmdir()
    mf.unlink(missing_ok=True)


def planned_files(out_dir, units, out_dirs, ext=".npy") -> list:
    """Every file a run over `units` may write, relative to OUT."""
    out = Path(out_dir)
    return sorted(str((d / f"{u.stem}{ext}").relative_to(out)) for d in out_dirs for u in units)


def file_map(out_dir, units, out_dirs, ext, skipped, written, failed) -> list:
    """The summary's `files`: per unit, in input order, its input file(s), its output files
    (relative to OUT) and whether they were written, skipped (complete in the manifest of the run
    resumed), failed (their batch failed) or not written (the run stopped first)."""
    out = Path(out_dir)
    entries = []
    for ui, u in enumerate(units):
        status = ("written" if ui in written else "skipped" if ui in skipped else "failed" if ui in failed
                  else "not written")
        entries.append({"input": [str(p) + (f"[{k}]" if k else "") for p, k in
                                  zip(u.paths, u.npz_keys or [None] * len(u.paths))],
                        "samples": u.rows, "outputs": [str((d / f"{u.stem}{ext}").relative_to(out)) for d in out_dirs],
                        "status": status})
    return entries


def read_manifest(out_dir, name: str) -> dict:
    """The manifest of the run to resume in OUT. Raises InputFileError."""
    mf = Path(out_dir) / name
    try:
        manifest = json.loads(mf.read_text())
        if not isinstance(manifest.get("files"), list) or not isinstance(manifest.get("options"), dict):
            raise ValueError("not a fastexec run manifest")
    except FileNotFoundError:
        raise InputFileError(f"{out_dir}: --resume refused: no {name} there (no fastexec run to continue)") from None
    except (OSError, ValueError, AttributeError) as exc:
        raise InputFileError(f"{mf}: --resume refused: cannot read it ({exc})") from None
    return manifest


def resumable(out_dir, previous, model, options, compared, units, out_dirs, ext) -> set:
    """The units a resumed run skips: listed complete in the previous manifest, all outputs
    present. Raises InputFileError if the model or an option in `compared` differs; removes
    the temporary files (``.*.part``) a killed run left in the output folders."""
    if previous.get("model") != model:
        raise InputFileError(f"{out_dir}: --resume refused: the earlier run used the model {previous.get('model')}, "
                             f"this one {model}")
    before = previous["options"]
    for key in compared:
        if before.get(key, "npy" if key == "outfmt" else None) != options[key]:
            raise InputFileError(f"{out_dir}: --resume refused: the earlier run had {key} = {before.get(key)!r}, "
                                 f"this one {options[key]!r}; start a new run (or --force) to change it")
    for d in out_dirs:                     # what a killed run was writing: never a complete output
        for stale in d.glob(".*.part"):
            stale.unlink()
    listed = set(previous.get("completed", []))
    return {ui for ui, u in enumerate(units)
            if u.stem in listed and all((d / f"{u.stem}{ext}").is_file() for d in out_dirs)}


def write_manifest(out_dir, name: str, manifest: dict) -> None:
    write_atomic(Path(out_dir) / name, lambda f: f.write((json.dumps(manifest, indent=2) + "\n").encode()))
