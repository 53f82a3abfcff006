"""A picture of a trace (fastexec bench --plot): the stage occupancy of a window of batches, one
row per stream and one per host thread, a colour per stage, each bar labelled with its batch;
beside it, a histogram of the batches' end-to-end latency. Needs matplotlib, the optional extra
``pip install fastexec[plot]``; imported only when a picture is asked for."""
from __future__ import annotations

from . import tracing

COLOURS = {"h2d": "#4C72B0", "execute": "#DD8452", "d2h": "#55A868",
           "stage": "#8172B3", "enqueue": "#937860", "wait": "#C7C7C7", "collect": "#64B5CD", "drain": "#C44E52"}
WIDTH_IN, HEIGHT_IN, DPI = 12.0, 5.0, 120      # 1440 x 600 pixels


def require():
    """matplotlib, or ImportError saying how to get it."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("--plot needs matplotlib, which is not installed: pip install fastexec[plot] "
                          "(or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _window(batch_events, n):
    """The tickets of the `n` consecutive batches whose device stages span the least time (the
    steadiest stretch of the run; of equals, the one nearest the middle)."""
    tickets = sorted(batch_events)
    if len(tickets) <= n:
        return tickets
    bounds = []
    for k in tickets:
        dev = [e for e in batch_events[k] if e["pid"] == tracing.DEVICE_PID] or batch_events[k]
        bounds.append((min(e["ts"] for e in dev), max(e["ts"] + e["dur"] for e in dev)))
    middle = (len(tickets) - n) / 2
    best = min(range(len(tickets) - n + 1),
               key=lambda i: (max(b[1] for b in bounds[i:i + n]) - min(b[0] for b in bounds[i:i + n]), abs(i - middle)))
    return tickets[best:best + n]


def timeline_png(trace: dict, path, batches: int = 16, title: str = "") -> None:
    """Draw `trace` (a Chrome trace dict from Executor.trace()) to the PNG `path`."""
    plt = require()
    from matplotlib.patches import Patch

    events = [e for e in trace["traceEvents"] if e.get("ph") == "X"]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in trace["traceEvents"]
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    batch_events = {}
    for e in events:
        if "batch" in e["args"]:
            batch_events.setdefault(e["args"]["batch"], []).append(e)
    chosen = set(_window(batch_events, batches))
    shown = [e for k in chosen for e in batch_events[k]]
    if shown:
        lo = min(e["ts"] for e in shown)
        hi = max(e["ts"] + e["dur"] for e in shown)
        shown += [e for e in events if "batch" not in e["args"] and e["ts"] < hi and e["ts"] + e["dur"] > lo]
    tracks = sorted({(e["pid"], e["tid"]) for e in shown},
                    key=lambda t: (t[0], t[1] if t[0] == tracing.DEVICE_PID else 0, t[1]))
    row = {t: i for i, t in enumerate(tracks)}

    fig = plt.figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    grid = fig.add_gridspec(1, 2, width_ratios=(4.2, 1), wspace=0.25, left=0.16, right=0.985, top=0.86, bottom=0.2)
    ax = fig.add_subplot(grid[0])
    hist = fig.add_subplot(grid[1])
    t0 = min((e["ts"] for e in shown), default=0)
    span = max((e["ts"] + e["dur"] for e in shown), default=1) - t0 or 1
    ax.set_xlim(0, span / 1e3)
    px_per_ms = ax.get_window_extent().width / (span / 1e3)
    for e in shown:
        y = row[(e["pid"], e["tid"])]
        x, w = (e["ts"] - t0) / 1e3, e["dur"] / 1e3
        ax.barh(y, w, left=x, height=0.72, color=COLOURS.get(e["cat"], "#999999"), edgecolor="white", linewidth=0.6)
        k = e["args"].get("batch")
        if k is not None and e["pid"] == tracing.DEVICE_PID:
            wide = w * px_per_ms
            size = min(8.0, wide / (0.62 * len(str(k)) + 0.6) * 72 / DPI)     # across the bar, if it fits
            rotation = 0
            if size < 6:                                                      # else along it
                size, rotation = min(8.0, 0.75 * wide * 72 / DPI), 90
            if size >= 4.5:
                ax.text(x + w / 2, y, str(k), ha="center", va="center", fontsize=size, rotation=rotation,
                        color="white", fontweight="bold")
    ax.set_yticks(range(len(tracks)))
    ax.set_yticklabels([names.get(t, str(t)) for t in tracks], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("time (ms)")
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    cats = [c for c in COLOURS if any(e["cat"] == c for e in shown)]
    ax.legend(handles=[Patch(color=COLOURS[c], label=c) for c in cats], loc="upper center",
              bbox_to_anchor=(0.5, -0.11), ncol=len(cats) or 1, fontsize=9, frameon=False)
    s = tracing.summary(trace)
    share = s["copy_ins_overlapping_execution"]
    ax.set_title(f"{len(chosen)} consecutive batches: the steadiest stretch of the run", fontsize=10, loc="left")
    if share is not None:
        fig.text(0.985, 0.955, f"whole run: {s['events']['h2d']} batches, copy-ins overlapping an execution "
                 f"{100 * share:.0f}%", ha="right", fontsize=10)

    latency = sorted(_latencies_ms(events))
    if latency:
        med = latency[len(latency) // 2]
        lo, hi = latency[0], latency[-1]
        if hi - lo < 0.1 * med:                  # a narrow spread: still a readable range
            lo, hi = med * 0.95, med * 1.05
        hist.hist(latency, bins=30, range=(lo, hi), color=COLOURS["h2d"], edgecolor="white")
        hist.axvline(med, color="#333333", linewidth=1, linestyle="--")
        hist.text(med, hist.get_ylim()[1] * 0.97, f" median\n {med:.2f} ms", fontsize=8, va="top")
    hist.set_title(f"latency of {len(latency)} batches", fontsize=10, loc="left")
    hist.set_xlabel("queued to outputs ready (ms)", fontsize=9)
    hist.set_ylabel("batches", fontsize=9)
    for side in ("top", "right"):
        hist.spines[side].set_visible(False)
    if title:
        fig.suptitle(f"fastexec pipeline timeline: {title}", fontsize=12, x=0.02, ha="left")
    fig.savefig(path, format="png")
    plt.close(fig)


def _latencies_ms(events):
    """Per batch: from the start of the host call that queued it to the end of its copy-out."""
    start, end = {}, {}
    for e in events:
        k = e["args"].get("batch")
        if e["cat"] == "enqueue":
            start[k] = e["ts"]
        elif e["cat"] == "d2h":
            end[k] = e["ts"] + e["dur"]
    return [(end[k] - start[k]) / 1e3 for k in start if k in end]
