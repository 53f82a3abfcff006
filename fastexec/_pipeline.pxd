# The C state of the pipeline core (fastexec/pipeline.pxi). Plain structs: the core works on
# them without the GIL, and every front end (run, imap, submit/result, staged, the C API) goes
# through the same functions over them.
from cpython.ref cimport PyObject
from libc.stdint cimport int64_t, intptr_t, uint32_t, uint64_t

from fastexec._acl.acl_base cimport aclError, aclrtContext, aclrtEvent, aclrtStream, aclDataBuffer
from fastexec._acl.acl_mdl cimport aclmdlAIPP, aclmdlDataset, aclmdlExecConfigHandle


cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    ctypedef struct pthread_cond_t:
        pass


cdef enum:
    MAX_IO = 64                     # inputs, and outputs, per model
    HIST_BUCKETS = 2304             # log buckets per series: 1e-4 ms x 1.01^i, up to ~880 s
    TIMES_LOG = 4096                # raw samples a series keeps for export until drained
    STATUS_MESSAGE = 512

    # A slot's events, in the order a batch records them (stage s starts at 2s, ends at 2s+1).
    EV_H2D_START = 0
    EV_H2D_END = 1
    EV_EXEC_START = 2
    EV_EXEC_END = 3
    EV_D2H_START = 4
    EV_D2H_END = 5
    N_EVENTS = 6
    N_STAGES = 3                    # copy-in, execute, copy-out

    # The life of a slot: FREE -> RESERVED -> QUEUED -> DONE | FAILED -> HELD -> FREE. A slot
    # whose memory the device may still be using when it is given back (its batch timed out, or
    # failed half-queued) goes HELD -> RETIRING -> FREE once the device is done with it.
    SLOT_FREE = 0
    SLOT_RESERVED = 1               # a ticket has it; its inputs are being staged
    SLOT_QUEUED = 2                 # its work is on the device
    SLOT_DONE = 3                   # finished; outputs valid in the slot's pinned memory
    SLOT_FAILED = 4                 # finished or given up on; `status` says why
    SLOT_HELD = 5                   # a consumer is reading it (until it releases the slot)
    SLOT_RETIRING = 6               # given back while the device may still use its memory

    # Who takes a queued batch's result. A reserver that needs the slot waits for the owner to
    # release it, except for OWNER_NOBODY (it retires the slot itself) and OWNER_PYTHON (it
    # moves the outputs into the executor's table of finished Python batches).
    OWNER_NOBODY = 0
    OWNER_PYTHON = 1                # submit()/staged() tickets; any other value is private
                                    # (a run() call, a C API handle)

    # What the core's calls return (besides the ACL status they may fill in).
    PL_OK = 0
    PL_BUSY = 1                     # no free slot now (a try-only reservation)
    PL_COLLECT = 2                  # the slot needed holds a finished Python batch: move it out first
    PL_CLOSED = 3
    PL_EXPIRED = 4                  # the caller's own deadline passed
    PL_INTERRUPTED = 5              # a signal handler raised (the exception is pending)
    PL_UNKNOWN = 6                  # no such ticket in a slot (or not the caller's, or not queued)
    PL_FAILED = 7                   # an ACL call failed (see the status)
    PL_FORKED = 8                   # the pipeline belongs to the parent process

    PLAN_SERIAL = 0
    PLAN_OVERLAP = 1

    # A model's dynamic profile (one at most).
    DYN_NONE = 0
    DYN_BATCH = 1                   # gears of the batch (aclmdlSetDynamicBatchSize)
    DYN_HW = 2                      # height/width gears (aclmdlSetDynamicHWSize)
    DYN_DIMS = 3                    # gears giving every input a shape (aclmdlSetInputDynamicDims)
    DYN_SHAPE = 4                   # -1 dims within ranges (aclmdlSetDatasetTensorDesc per dataset)
    MAX_SHAPE_DIMS = 16             # dims per tensor of a dynamic HW / dims / shape model


cdef struct Status:
    aclError code                   # 0: no failure
    const char* api                 # the failing ACL call (a static string)
    int64_t behind                  # >= 0: failed because batch `behind` timed out ahead of it
    char message[STATUS_MESSAGE]    # the runtime's message, read on the failing thread


cdef struct IOBuf:
    void* dev
    void* host
    size_t nbytes                   # allocated: the model's size for one full batch
    aclDataBuffer* buf


cdef struct Slot:
    IOBuf* ins
    IOBuf* outs
    void** in_hosts                 # the pinned input / output pointers as arrays (C API)
    void** out_hosts
    void* dyn_dev                   # the hidden gear tensor (dynamic batch / HW / dims models)
    aclDataBuffer* dyn_buf
    void* aipp_dev                  # the dynamic AIPP parameter input (ACL_DYNAMIC_AIPP_NAME)
    aclDataBuffer* aipp_buf
    const aclmdlAIPP* aipp_next     # the reserved batch's own AIPP parameters (NULL: the executor's)
    bint aipp_own                   # aipp_dev holds a batch's own parameters, not the executor's
    int gear                        # the batch's gear (an index into the pipeline's gears), -1: none
    int ds_gear                     # the gear its input dataset carries, -1: none set yet
    size_t* in_n                    # bytes of each input this batch copies in (its gear's or shape's)
    size_t* out_n                   # bytes of each output it copies out
    int64_t* in_shape               # dynamic shape: each input's dims (n_in x MAX_SHAPE_DIMS)
    int64_t* out_shape              # dynamic HW / dims / shape: each output's real dims (n_out x MAX_SHAPE_DIMS)
    aclmdlDataset* in_ds
    aclmdlDataset* out_ds
    aclrtEvent ev[N_EVENTS]
    int n_events                    # created so far
    int state
    int64_t ticket                  # the batch it holds (meaningless when FREE)
    intptr_t owner
    int waiters                     # threads waiting on its device work
    bint device_busy                # the device may still use its memory
    bint recorded                   # ev[EV_D2H_END] was recorded for the current batch
    unsigned long reserver          # thread that reserved it
    uint64_t rows                   # valid rows of the batch
    double t_stage                  # host time staging its inputs (s)
    double t_enqueue                # host time queueing it (s)
    double t_queued                 # when it was queued (monotonic s)
    double deadline                 # t_queued + the exec-config timeout, or 0
    Status status
    # host times of its batch for the trace (monotonic s; 0: not measured)
    double t_reserved
    double t_stage0                 # pl_stage's copy into the pinned inputs
    double t_stage1
    double t_enqueue0               # pl_enqueue
    double t_held                   # pl_wait handed it to its consumer
    long submit_tid                 # the thread that queued it
    int64_t trace_at                # its record in the trace ring, or -1


# Which stream each stage runs on. A stage on another stream than the one before it waits for
# that stage's end event and records its own start event.
cdef struct Plan:
    int n_streams
    int stream_of[N_STAGES]


cdef struct Inst:
    aclrtStream streams[N_STAGES]
    int n_streams                   # created so far
    uint32_t model_id
    Slot* slots
    aclrtContext ctx                # the context of the instance's device: its streams, events,
                                    # memory and model live there
    int device                      # that device's id
    int gear                        # the model's gear (model-global in ACL), -1: none set
    int switching                   # a thread is draining it to change its gear
    int enqueuing                   # threads queueing batches on it at its current gear


cdef struct Series:
    uint64_t count
    double total                    # ms
    double min                      # ms (meaningless while count is 0)
    double max
    uint64_t hist[HIST_BUCKETS]     # bucket 0: <= HIST_LOW ms; i >= 1: (LOW R^(i-1), LOW R^i]
    bint logging                    # keep raw samples in `log` (Executor.take_times drains it)
    uint64_t log_n
    uint64_t log_dropped            # samples that found the log full
    double log[TIMES_LOG]


cdef enum:
    SERIES_H2D = 0
    SERIES_EXECUTE = 1
    SERIES_D2H = 2
    SERIES_E2E = 3
    SERIES_STAGING = 4
    SERIES_ENQUEUE = 5
    N_SERIES = 6


cdef struct Stats:
    Series series[N_SERIES]
    uint64_t cal_batches            # Executor.calibrate(): uncontended batches measured (0: none)
    double cal_ms[N_STAGES]         # their mean h2d, execute, d2h (ms); kept by reset_stats
    uint64_t batches
    uint64_t samples                # rows of the finished batches
    uint64_t drains                 # gear changes that waited for the instance's batches in flight
    uint64_t gear_sets              # gear settings of a slot's dataset (no wait when the model kept its gear)
    double wall                     # time with batches on the device, closed intervals (s)
    double active_since             # start of the open interval, or 0


cdef struct Pipeline:
    pthread_mutex_t mu
    pthread_cond_t changed          # broadcast whenever a slot changes state
    int n_inst
    int depth
    int window                      # depth x instances
    int n_in
    int n_out
    uint64_t batch_size
    size_t in_row[MAX_IO]           # bytes of one row: shape[1:] x itemsize
    size_t out_row[MAX_IO]
    size_t in_bytes[MAX_IO]         # bytes of one full batch, as the model reports them
    size_t out_bytes[MAX_IO]
    int aipp_index                  # its dynamic AIPP parameter input, or -1
    const aclmdlAIPP* aipp          # the executor's dynamic AIPP parameters (every slot's default)
    bint dynamic                    # the model has the hidden gear input (dynamic batch / HW / dims)
    int dyn_kind                    # DYN_*
    int n_gears                     # gears of a dynamic batch / HW / dims model
    uint64_t* gear_rows             # dynamic batch: each gear's batch, ascending
    int64_t* gear_vals              # dynamic HW: (h, w); dynamic dims: every input's dims concatenated
    int gear_nvals                  # values per gear in gear_vals
    size_t* gear_in_bytes           # n_gears x n_in: each input's bytes at the gear
    size_t* gear_out_bytes          # n_gears x n_out
    int64_t* gear_out_shape         # n_gears x n_out x MAX_SHAPE_DIMS: each output's dims at the gear
    int in_ndims[MAX_IO]
    int out_ndims[MAX_IO]
    size_t in_item[MAX_IO]          # element sizes (dynamic shape: bytes from dims)
    size_t out_item[MAX_IO]
    const char* out_name[MAX_IO]    # for messages (the executor keeps the strings alive)
    Plan plan
    aclmdlExecConfigHandle* config  # NULL: aclmdlExecuteAsync
    double batch_timeout            # the exec config's stream-sync timeout (s), 0 for none
    bint sliced_sync                # the library has aclrtSynchronize{Event,Stream}WithTimeout
    int n_devices                   # instance i runs on device i % n_devices of the executor's list
    long pid                        # the process that made it
    Inst* insts
    int64_t next_ticket
    int in_flight                   # slots QUEUED
    int closing                     # no new batches
    Stats* stats
    Trace* trace                    # NULL: never traced (fastexec/trace.pxi)


# The trace (fastexec/trace.pxi): per batch, its device stage times (from its events' timestamps)
# and its host spans, in a ring of the last `capacity` batches; plus pipeline-level host spans.
cdef enum:
    SPAN_STAGE = 0                  # host spans of a batch: start at 2k, end at 2k + 1
    SPAN_ENQUEUE = 1
    SPAN_WAIT = 2                   # a consumer blocked until the device finished it
    SPAN_COLLECT = 3                # its consumer held the slot (reading the outputs)
    N_SPANS = 4
    TRACE_MAX = 1 << 20             # batches a ring may keep
    TRACE_SPANS = 256               # pipeline-level spans kept
    PSPAN_DRAIN = 0                 # pipeline-level spans: waiting for the device to empty
    PSPAN_STOP_DRAIN = 1            # after an interrupt or a timeout
    PSPAN_GEAR_DRAIN = 2            # an instance emptied before its gear changes (dynamic models)


cdef struct TraceRecord:
    int64_t ticket
    int instance
    int slot
    uint64_t rows
    int failed
    long submit_tid                 # host threads (kernel thread ids)
    long collect_tid
    double host[2 * N_SPANS]        # monotonic s; 0: none
    uint64_t dev_us[2 * N_STAGES]   # device clock (aclrtEventGetTimestamp, us); 0: none


cdef struct TraceSpan:
    int kind
    long tid
    double t0
    double t1


cdef struct Trace:
    bint on
    int capacity
    int64_t head                    # records pushed since the ring was started
    int64_t tail                    # first record not yet taken (take_trace)
    double origin                   # monotonic s when tracing started
    double offset_s                 # host s = device us x 1e-6 + offset_s (measured at start)
    double offset_err_s             # half the width of the bracket it was measured in
    TraceRecord* recs
    int64_t span_head
    int64_t span_tail
    TraceSpan spans[TRACE_SPANS]


# One caller's wait: how long, and whether to run signal handlers between slices.
cdef struct Waiter:
    double deadline                 # the caller's own deadline (monotonic s), 0: none
    bint signals                    # a Python caller: run signal handlers between slices
    double next_check
    PyObject* exc                   # the exception a signal handler raised (a new reference)
