# The executor's statistics: per-stage device times from each batch's events, host times, and
# the bound they imply. Included by fastexec/_core.pyx; the C state (Stats, Series) is in
# fastexec/_pipeline.pxd and is written by the pipeline core under its mutex.
#
# Each series keeps, over every batch since the last reset and in constant memory: the count,
# sum, min and max, and a histogram of log-spaced buckets (bucket i >= 1 holds the values in
# (HIST_LOW x R^(i-1), HIST_LOW x R^i] with R = 1.01), from which the percentiles are read to
# within half a bucket (~0.5 %). When asked to (Executor.take_times), a series also keeps its
# raw samples in a fixed log that the caller drains, so per-batch times can be exported.

from libc.math cimport log as c_log, sqrt as c_sqrt

SERIES_NAMES = ("h2d", "execute", "d2h", "end_to_end", "host_staging", "host_enqueue")
STAGE_NAMES = ("h2d", "execute", "d2h")

cdef double HIST_LOW = 1e-4         # ms: values at or below it go to bucket 0
cdef double HIST_RATIO = 1.01
cdef double HIST_LOG_RATIO = c_log(1.01)


cdef inline void series_add(Series* s, double v) noexcept nogil:
    cdef long i
    if s.count == 0 or v < s.min:
        s.min = v
    if s.count == 0 or v > s.max:
        s.max = v
    s.count += 1
    s.total += v
    if v <= HIST_LOW:
        i = 0
    else:
        i = 1 + <long>(c_log(v / HIST_LOW) / HIST_LOG_RATIO)
        if i >= HIST_BUCKETS:
            i = HIST_BUCKETS - 1
    s.hist[i] += 1
    if s.logging:
        if s.log_n < TIMES_LOG:
            s.log[s.log_n] = v
            s.log_n += 1
        else:
            s.log_dropped += 1


cdef inline double series_mean(const Series* s) noexcept nogil:
    return s.total / s.count if s.count else 0


cdef double series_quantile(const Series* s, double q) noexcept nogil:
    """The q-quantile (0 < q <= 1) from the histogram: the geometric middle of the bucket that
    holds the ceil(q x count)-th smallest value, clamped to [min, max]. 0 when empty."""
    cdef uint64_t rank, seen = 0
    cdef long i
    cdef double v
    if s.count == 0:
        return 0
    rank = <uint64_t>(q * s.count)
    if rank < q * s.count:
        rank += 1
    if rank < 1:
        rank = 1
    for i in range(HIST_BUCKETS):
        seen += s.hist[i]
        if seen >= rank:
            break
    if i == 0:
        v = s.min
    else:
        v = HIST_LOW * HIST_RATIO ** (i - 1) * c_sqrt(HIST_RATIO)
    if v < s.min:
        v = s.min
    if v > s.max:
        v = s.max
    return v


cdef void series_reset(Series* s) noexcept nogil:
    """Empty the series; whether it logs raw samples stays as it was."""
    cdef bint logging = s.logging
    memset(s, 0, sizeof(Series))
    s.logging = logging


cdef void stats_reset(Stats* t, bint in_flight) noexcept nogil:
    """Mutex held: start the figures afresh; the calibration and the logging switches stay."""
    cdef int i
    for i in range(N_SERIES):
        series_reset(&t.series[i])
    t.batches = 0
    t.samples = 0
    t.drains = 0
    t.gear_sets = 0
    t.wall = 0
    t.active_since = fx_now() if in_flight else 0


cdef object series_summary(const Series* s):
    if s.count == 0:
        return {"mean_ms": None, "min_ms": None, "max_ms": None, "p50_ms": None, "p90_ms": None, "p95_ms": None,
                "p99_ms": None, "count": 0}
    return {"mean_ms": s.total / s.count, "min_ms": s.min, "max_ms": s.max,
            "p50_ms": series_quantile(s, 0.50), "p90_ms": series_quantile(s, 0.90),
            "p95_ms": series_quantile(s, 0.95), "p99_ms": series_quantile(s, 0.99), "count": int(s.count)}


cdef double stats_wall(const Stats* t) noexcept nogil:
    """Seconds with batches on the device, the open interval included."""
    return t.wall + (fx_now() - t.active_since if t.active_since != 0 else 0)


cdef double bound_period_ms(double h, double c, double d, int instances, int devices, bint overlap) noexcept nogil:
    """The steady-state period per batch that uncontended stage times h, c, d allow, with one
    engine of each kind (H2D copy, compute, D2H copy) per device shared by that device's
    `instances`: each batch occupies each engine of its device for its stage; in serial mode
    also its instance's one stream for all three. Batches are spread evenly over `devices`
    devices, each with engines of its own, so the period divides by their number."""
    return _device_period_ms(h, c, d, instances, overlap) / (devices if devices > 1 else 1)


cdef double _device_period_ms(double h, double c, double d, int instances, bint overlap) noexcept nogil:
    cdef double slowest = h
    if c > slowest:
        slowest = c
    if d > slowest:
        slowest = d
    if overlap:
        return slowest
    if (h + c + d) / instances > slowest:
        return (h + c + d) / instances
    return slowest


cdef object stats_report(const Stats* t, uint64_t batch_size, int instances, int devices, bint overlap):
    """The figures of Executor.stats() from a snapshot of the C state (`instances` per device)."""
    wall = stats_wall(t)
    out = {"batches": int(t.batches), "wall_s": wall, "samples": int(t.samples),
           # dynamic models: gear changes that waited for the instance's batches in flight, and
           # gear settings of a slot's dataset while its instance kept its gear (no wait)
           "drains": int(t.drains), "gear_sets": int(t.gear_sets)}
    for i in range(N_SERIES):
        out[SERIES_NAMES[i]] = series_summary(&t.series[i])
    b = out["batches"]
    out["throughput"] = {"samples_per_s": b * batch_size / wall if wall > 0 else None,
                         "batches_per_s": b / wall if wall > 0 else None}
    if t.cal_batches:
        stage_ms = [t.cal_ms[0], t.cal_ms[1], t.cal_ms[2]]
        source = "calibration"
    elif b:
        stage_ms = [out[n]["mean_ms"] for n in STAGE_NAMES]
        # Without a calibration, the run's own means: they include any wait for an engine that
        # another instance's batch held, so with instances > 1 they overstate the stages.
        source = "run" if instances == 1 else "run (contended)"   # (devices do not contend: engines of their own)
    else:
        stage_ms = None
        source = None
    out["calibration"] = ({"batches": int(t.cal_batches), "h2d_ms": t.cal_ms[0], "execute_ms": t.cal_ms[1],
                           "d2h_ms": t.cal_ms[2]} if t.cal_batches else None)
    out["bound"] = {"period_ms": None, "samples_per_s": None, "efficiency": None, "source": source,
                    "compute_only_samples_per_s": None, "device_utilization": None}
    if stage_ms is not None:
        period_ms = bound_period_ms(stage_ms[0], stage_ms[1], stage_ms[2], instances, devices, overlap)
        bps = out["throughput"]["batches_per_s"]
        out["bound"].update({
            "period_ms": period_ms,
            "samples_per_s": batch_size * 1e3 / period_ms if period_ms > 0 else None,
            "efficiency": bps * period_ms / 1e3 if period_ms > 0 and bps is not None else None,
            # one compute engine per device: the most samples/s they can give, from the uncontended time
            "compute_only_samples_per_s": devices * batch_size * 1e3 / stage_ms[1] if stage_ms[1] > 0 else None,
            # the share of the measured wall time the compute engines spent on these batches
            # (their mean over the devices)
            "device_utilization": b * stage_ms[1] / 1e3 / wall / devices if wall > 0 and b else None,
        })
    return out
