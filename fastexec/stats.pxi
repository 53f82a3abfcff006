# The executor's statistics: per-stage device times from each batch's events, host times, and
# the bound they imply. Included by fastexec/_core.pyx; the C state (Stats, Series) is in
# fastexec/_pipeline.pxd and is written by the pipeline core under its mutex.

SERIES_NAMES = ("h2d", "execute", "d2h", "end_to_end", "host_staging", "host_enqueue")


cdef inline void series_add(Series* s, double v) noexcept nogil:
    # a ring of the last STATS_WINDOW samples: memory stays flat however long the executor runs
    s.window[s.count % STATS_WINDOW] = v
    s.count += 1
    s.total += v


cdef inline double series_mean(const Series* s) noexcept nogil:
    return s.total / s.count if s.count else 0


cdef object series_summary(const Series* s):
    n = min(s.count, STATS_WINDOW)
    if n == 0:
        return {"mean_ms": None, "p50_ms": None, "p90_ms": None, "p95_ms": None, "p99_ms": None, "count": 0}
    values = np.asarray(<double[:n]>s.window).copy()
    p50, p90, p95, p99 = np.percentile(values, [50, 90, 95, 99])
    return {"mean_ms": s.total / s.count, "p50_ms": float(p50), "p90_ms": float(p90), "p95_ms": float(p95),
            "p99_ms": float(p99), "count": int(s.count)}


cdef double stats_wall(const Stats* t) noexcept nogil:
    """Seconds with batches on the device, the open interval included."""
    return t.wall + (fx_now() - t.active_since if t.active_since != 0 else 0)


cdef object stats_report(const Stats* t, uint64_t batch_size, int instances, bint overlap):
    """The figures of Executor.stats() from a snapshot of the C state."""
    wall = stats_wall(t)
    out = {"batches": int(t.batches), "wall_s": wall}
    for i in range(N_SERIES):
        out[SERIES_NAMES[i]] = series_summary(&t.series[i])
    b = out["batches"]
    out["throughput"] = {"samples_per_s": b * batch_size / wall if wall > 0 else None,
                         "batches_per_s": b / wall if wall > 0 else None}
    out["bound"] = {"period_ms": None, "samples_per_s": None, "efficiency": None}
    if b:
        h, c, d = out["h2d"]["mean_ms"], out["execute"]["mean_ms"], out["d2h"]["mean_ms"]
        # The device has one engine of each kind, shared by the instances: a batch occupies
        # each engine for its stage, and in serial mode its stream for all three.
        period_ms = max(h, c, d) if overlap else max((h + c + d) / instances, h, c, d)
        out["bound"] = {"period_ms": period_ms,
                        "samples_per_s": batch_size * 1e3 / period_ms if period_ms > 0 else None,
                        "efficiency": (out["throughput"]["batches_per_s"] * period_ms / 1e3
                                       if period_ms > 0 and wall > 0 else None)}
    return out
