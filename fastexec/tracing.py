"""Chrome trace event JSON from an executor's trace records (Executor.trace_records()), and the
few figures one reads off a timeline (docs/executor.md, "Traces").

Layout: process 1 "device" holds one track (thread) per stream of each model instance; process 2
"host" one per host thread. Every span is a complete event (``"ph": "X"``) whose name starts with
its stage or host step and ends with the batch's ticket ("execute 17"); ``args`` carries the
batch, instance, slot and rows. Times are microseconds on the host's monotonic clock, counted
from the moment tracing started; device times are placed on it by the measured clock offset.
"""
from __future__ import annotations

import bisect
import json
import threading

STAGES = ("h2d", "execute", "d2h")
HOST_SPANS = ("stage", "enqueue", "wait", "collect")
DEVICE_PID = 1
HOST_PID = 2
STREAM_ROLE = {1: ("stream",), 3: ("h2d stream", "execute stream", "d2h stream")}


def clock_offset_us(records) -> int:
    """The device-to-host offset (us, whole): the one measured when tracing started, raised
    where needed so that no copy-in starts before the host began the call that queued it."""
    offset = records["offset_s"] * 1e6
    dev = records["device_us"]
    enq = records["host_s"][:, 2]
    ok = (dev[:, 0] > 0) & (enq > 0)
    if ok.any():
        offset = max(offset, float((enq[ok] * 1e6 - dev[ok, 0]).max()))
    return int(round(offset))


def _thread_names() -> dict:
    return {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}


def chrome_trace(records) -> dict:
    """The Chrome trace event dict of Executor.trace_records() output."""
    offset = clock_offset_us(records)
    origin = int(round(records["origin_s"] * 1e6))
    n_streams = records["streams_per_instance"]
    stream_of = records["stream_of_stage"]
    roles = STREAM_ROLE.get(n_streams, tuple(f"stream {i}" for i in range(n_streams)))
    events = [
        {"ph": "M", "name": "process_name", "pid": DEVICE_PID, "args": {"name": "device"}},
        {"ph": "M", "name": "process_sort_index", "pid": DEVICE_PID, "args": {"sort_index": 0}},
        {"ph": "M", "name": "process_name", "pid": HOST_PID, "args": {"name": "host"}},
        {"ph": "M", "name": "process_sort_index", "pid": HOST_PID, "args": {"sort_index": 1}},
    ]
    for inst in range(records["instances"]):
        for s in range(n_streams):
            tid = inst * n_streams + s + 1
            events.append({"ph": "M", "name": "thread_name", "pid": DEVICE_PID, "tid": tid,
                           "args": {"name": f"instance {inst} {roles[s]}"}})
            events.append({"ph": "M", "name": "thread_sort_index", "pid": DEVICE_PID, "tid": tid,
                           "args": {"sort_index": tid}})
    names = _thread_names()
    host_tids = []
    body = []
    dev, host = records["device_us"], records["host_s"]
    for i in range(len(records["ticket"])):
        k = int(records["ticket"][i])
        inst = int(records["instance"][i])
        args = {"batch": k, "instance": inst, "slot": int(records["slot"][i]), "rows": int(records["rows"][i])}
        if not records["failed"][i]:
            for st, name in enumerate(STAGES):
                t0, t1 = dev[i, 2 * st], dev[i, 2 * st + 1]
                if t0 > 0 and t1 >= t0:
                    body.append({"ph": "X", "name": f"{name} {k}", "cat": name, "pid": DEVICE_PID,
                                 "tid": inst * n_streams + stream_of[st] + 1,
                                 "ts": int(t0) + offset - origin, "dur": int(t1) - int(t0), "args": args})
        for sp, name in enumerate(HOST_SPANS):
            t0, t1 = host[i, 2 * sp], host[i, 2 * sp + 1]
            if t0 > 0 and t1 >= t0:
                tid = int(records["submit_thread"][i] if sp < 2 else records["collect_thread"][i])
                if tid not in host_tids:
                    host_tids.append(tid)
                body.append({"ph": "X", "name": f"{name} {k}", "cat": name, "pid": HOST_PID, "tid": tid,
                             "ts": round(t0 * 1e6 - origin, 3), "dur": round((t1 - t0) * 1e6, 3), "args": args})
        if records["failed"][i]:
            tid = int(records["collect_thread"][i])
            body.append({"ph": "i", "s": "t", "name": f"failed {k}", "cat": "failed", "pid": HOST_PID, "tid": tid,
                         "ts": round(host[i, 5] * 1e6 - origin, 3), "args": args})
    for name, tid, t0, t1 in records["spans"]:
        if tid not in host_tids:
            host_tids.append(tid)
        body.append({"ph": "X", "name": name, "cat": "drain", "pid": HOST_PID, "tid": tid,
                     "ts": round(t0 * 1e6 - origin, 3), "dur": round((t1 - t0) * 1e6, 3), "args": {}})
    for j, tid in enumerate(host_tids):
        events.append({"ph": "M", "name": "thread_name", "pid": HOST_PID, "tid": tid,
                       "args": {"name": f"host {names.get(tid, f'thread {tid}')}"}})
        events.append({"ph": "M", "name": "thread_sort_index", "pid": HOST_PID, "tid": tid, "args": {"sort_index": j}})
    body.sort(key=lambda e: e["ts"])
    return {
        "traceEvents": events + body,
        "displayTimeUnit": "ms",
        "otherData": {
            "producer": "fastexec",
            "clock": "host CLOCK_MONOTONIC, us since tracing started",
            "origin_monotonic_us": origin,
            "device_clock_offset_us": offset,
            "device_clock_offset_measured_us": round(records["offset_s"] * 1e6, 3),
            "device_clock_offset_uncertainty_us": round(records["offset_uncertainty_s"] * 1e6, 3),
            "batches": int(len(records["ticket"])),
            "dropped_batches": records["dropped"],
            "instances": records["instances"], "depth": records["depth"], "streams_per_instance": n_streams,
        },
    }


def merge(records_list):
    """Records drained in pieces (trace_records(clear=True)) as one: arrays concatenated, the
    clock facts of the first piece (one tracing session has one)."""
    import numpy as np

    pieces = [r for r in records_list if r is not None]
    if not pieces:
        return None
    out = dict(pieces[0])
    for key in ("ticket", "instance", "slot", "rows", "failed", "submit_thread", "collect_thread", "host_s",
                "device_us"):
        out[key] = np.concatenate([p[key] for p in pieces])
    out["spans"] = [s for p in pieces for s in p["spans"]]
    out["dropped"] = sum(p["dropped"] for p in pieces)
    return out


def write(path, trace: dict) -> int:
    """Write a trace dict as JSON; returns the number of events."""
    with open(path, "w") as f:
        json.dump(trace, f, separators=(",", ":"))
        f.write("\n")
    return len(trace["traceEvents"])


def spans(trace: dict, cat: str):
    """The complete events of one category as (start_us, end_us, event) sorted by start."""
    out = [(e["ts"], e["ts"] + e["dur"], e) for e in trace["traceEvents"] if e.get("ph") == "X" and e.get("cat") == cat]
    out.sort(key=lambda x: x[0])
    return out


def summary(trace: dict) -> dict:
    """What the timeline shows: events per stage; executions of one track that overlap (there
    must be none: one model instance runs one batch at a time); the share of copy-ins that run
    while an execution does (the overlap the pipeline is for)."""
    out = {"events": {s: len(spans(trace, s)) for s in STAGES}}
    execs = spans(trace, "execute")
    by_track = {}
    for t0, t1, e in execs:
        by_track.setdefault((e["pid"], e["tid"]), []).append((t0, t1))
    overlapping = 0
    for seq in by_track.values():
        overlapping += sum(1 for a, b in zip(seq, seq[1:]) if b[0] < a[1])
    out["overlapping_executions"] = overlapping
    busy = []                          # the union of the executions: disjoint, sorted
    for t0, t1, _ in execs:
        if busy and t0 <= busy[-1][1]:
            busy[-1][1] = max(busy[-1][1], t1)
        else:
            busy.append([t0, t1])
    starts = [b[0] for b in busy]
    h2d = spans(trace, "h2d")
    hit = 0
    for t0, t1, _ in h2d:
        i = bisect.bisect_left(starts, t1) - 1      # the last busy interval starting before t1
        if i >= 0 and busy[i][1] > t0:
            hit += 1
    out["copy_ins_overlapping_execution"] = hit / len(h2d) if h2d else None
    return out
