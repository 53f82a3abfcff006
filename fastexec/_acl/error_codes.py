"""aclError code table: symbolic names, short descriptions and categories.

Data only. The names and numeric values are those of the CANN runtime's public
headers (``acl_base_rt.h``, ``error_codes/rt_error_codes.h``,
``error_codes/ge_error_codes.h``) as this project declares them in
``include/acl/``; ``tests/test_error_codes.py`` parses those headers and fails
if this table and the headers drift apart. The descriptions are this project's
own short summaries.

The module uses only the standard library and is imported lazily, when an
error is turned into an exception.
"""

__all__ = [
    "NAMES",
    "ALIASES",
    "DESCRIPTIONS",
    "OUT_OF_MEMORY",
    "TIMEOUT",
    "INVALID_PARAM",
    "NOT_SUPPORTED",
    "name_of",
]

# (value, primary name, description). One row per distinct value; names that
# share a value with a row here are listed in ALIASES instead.
_CODES = (
    # ---- generic codes (acl_base_rt.h) ----
    (0, "ACL_SUCCESS", "success"),
    (-1, "ACL_ERROR_INVALID_EXCEPTION_INFO", "exception info record is not of a supported kind"),
    (100000, "ACL_ERROR_INVALID_PARAM", "invalid argument"),
    (100001, "ACL_ERROR_UNINITIALIZE", "ACL not initialized (aclInit not called)"),
    (100002, "ACL_ERROR_REPEAT_INITIALIZE", "ACL already initialized"),
    (100003, "ACL_ERROR_INVALID_FILE", "invalid or unreadable file"),
    (100004, "ACL_ERROR_WRITE_FILE", "could not write file"),
    (100005, "ACL_ERROR_INVALID_FILE_SIZE", "file size is not valid"),
    (100006, "ACL_ERROR_PARSE_FILE", "could not parse file"),
    (100007, "ACL_ERROR_FILE_MISSING_ATTR", "file lacks a required attribute"),
    (100008, "ACL_ERROR_FILE_ATTR_INVALID", "file attribute has a bad value"),
    (100009, "ACL_ERROR_INVALID_DUMP_CONFIG", "bad data-dump configuration"),
    (100010, "ACL_ERROR_INVALID_PROFILING_CONFIG", "bad profiling configuration"),
    (100011, "ACL_ERROR_INVALID_MODEL_ID", "model ID is not valid"),
    (100012, "ACL_ERROR_DESERIALIZE_MODEL", "could not deserialize model"),
    (100013, "ACL_ERROR_PARSE_MODEL", "could not parse model"),
    (100014, "ACL_ERROR_READ_MODEL_FAILURE", "could not read model"),
    (100015, "ACL_ERROR_MODEL_SIZE_INVALID", "model size is not valid"),
    (100016, "ACL_ERROR_MODEL_MISSING_ATTR", "model lacks a required attribute"),
    (100017, "ACL_ERROR_MODEL_INPUT_NOT_MATCH", "inputs do not match the model"),
    (100018, "ACL_ERROR_MODEL_OUTPUT_NOT_MATCH", "outputs do not match the model"),
    (100019, "ACL_ERROR_MODEL_NOT_DYNAMIC", "model has no dynamic batch/shape support"),
    (100020, "ACL_ERROR_OP_TYPE_NOT_MATCH", "operator type mismatch"),
    (100021, "ACL_ERROR_OP_INPUT_NOT_MATCH", "operator inputs mismatch"),
    (100022, "ACL_ERROR_OP_OUTPUT_NOT_MATCH", "operator outputs mismatch"),
    (100023, "ACL_ERROR_OP_ATTR_NOT_MATCH", "operator attributes mismatch"),
    (100024, "ACL_ERROR_OP_NOT_FOUND", "operator not found"),
    (100025, "ACL_ERROR_OP_LOAD_FAILED", "could not load operator"),
    (100026, "ACL_ERROR_UNSUPPORTED_DATA_TYPE", "data type not supported"),
    (100027, "ACL_ERROR_FORMAT_NOT_MATCH", "tensor format mismatch"),
    (100028, "ACL_ERROR_BIN_SELECTOR_NOT_REGISTERED", "no binary selector registered for operator"),
    (100029, "ACL_ERROR_KERNEL_NOT_FOUND", "kernel not found"),
    (100030, "ACL_ERROR_BIN_SELECTOR_ALREADY_REGISTERED", "binary selector registered twice"),
    (100031, "ACL_ERROR_KERNEL_ALREADY_REGISTERED", "kernel registered twice"),
    (100032, "ACL_ERROR_INVALID_QUEUE_ID", "queue ID is not valid"),
    (100033, "ACL_ERROR_REPEAT_SUBSCRIBE", "already subscribed"),
    (100034, "ACL_ERROR_STREAM_NOT_SUBSCRIBE", "stream has no subscribed report thread"),
    (100035, "ACL_ERROR_THREAD_NOT_SUBSCRIBE", "thread is not subscribed to any stream"),
    (100036, "ACL_ERROR_WAIT_CALLBACK_TIMEOUT", "timed out waiting for a callback"),
    (100037, "ACL_ERROR_REPEAT_FINALIZE", "ACL already finalized"),
    (100038, "ACL_ERROR_NOT_STATIC_AIPP", "model has no static AIPP"),
    (100039, "ACL_ERROR_COMPILING_STUB_MODE", "linked against the stub library; call unavailable"),
    (100040, "ACL_ERROR_GROUP_NOT_SET", "device group not set"),
    (100041, "ACL_ERROR_GROUP_NOT_CREATE", "device group not created"),
    (100042, "ACL_ERROR_PROF_ALREADY_RUN", "profiling already running"),
    (100043, "ACL_ERROR_PROF_NOT_RUN", "profiling not running"),
    (100044, "ACL_ERROR_DUMP_ALREADY_RUN", "data dump already running"),
    (100045, "ACL_ERROR_DUMP_NOT_RUN", "data dump not running"),
    (148046, "ACL_ERROR_PROF_REPEAT_SUBSCRIBE", "profiling subscription already exists"),
    (148047, "ACL_ERROR_PROF_API_CONFLICT", "conflicting profiling APIs in use"),
    (148048, "ACL_ERROR_INVALID_MAX_OPQUEUE_NUM_CONFIG", "bad max operator-queue setting"),
    (148049, "ACL_ERROR_INVALID_OPP_PATH", "operator package (OPP) path is not valid"),
    (148050, "ACL_ERROR_OP_UNSUPPORTED_DYNAMIC", "operator has no dynamic-shape support"),
    (148051, "ACL_ERROR_RELATIVE_RESOURCE_NOT_CLEARED", "related resources not released yet"),
    (148052, "ACL_ERROR_UNSUPPORTED_JPEG", "JPEG variant not supported"),
    (148053, "ACL_ERROR_INVALID_BUNDLE_MODEL_ID", "bundle model ID is not valid"),
    (200000, "ACL_ERROR_BAD_ALLOC", "memory allocation failed"),
    (200001, "ACL_ERROR_API_NOT_SUPPORT", "API not supported"),
    (200002, "ACL_ERROR_INVALID_DEVICE", "device is not valid"),
    (200003, "ACL_ERROR_MEMORY_ADDRESS_UNALIGNED", "memory address misaligned"),
    (200004, "ACL_ERROR_RESOURCE_NOT_MATCH", "resources do not belong together"),
    (200005, "ACL_ERROR_INVALID_RESOURCE_HANDLE", "resource handle is not valid"),
    (200006, "ACL_ERROR_FEATURE_UNSUPPORTED", "feature not supported"),
    (200007, "ACL_ERROR_PROF_MODULES_UNSUPPORTED", "profiling module not supported"),
    (300000, "ACL_ERROR_STORAGE_OVER_LIMIT", "storage limit exceeded"),
    (500000, "ACL_ERROR_INTERNAL_ERROR", "internal ACL error"),
    (500001, "ACL_ERROR_FAILURE", "ACL call failed"),
    (500002, "ACL_ERROR_GE_FAILURE", "graph engine failure"),
    (500003, "ACL_ERROR_RT_FAILURE", "runtime failure"),
    (500004, "ACL_ERROR_DRV_FAILURE", "driver failure"),
    (500005, "ACL_ERROR_PROFILING_FAILURE", "profiling failure"),
    # ---- runtime codes (error_codes/rt_error_codes.h) ----
    (107000, "ACL_ERROR_RT_PARAM_INVALID", "runtime rejected an argument"),
    (107001, "ACL_ERROR_RT_INVALID_DEVICEID", "device ID is not valid"),
    (107002, "ACL_ERROR_RT_CONTEXT_NULL", "no current context on this thread"),
    (107003, "ACL_ERROR_RT_STREAM_CONTEXT", "stream belongs to another context"),
    (107004, "ACL_ERROR_RT_MODEL_CONTEXT", "model belongs to another context"),
    (107005, "ACL_ERROR_RT_STREAM_MODEL", "stream is not bound to the model"),
    (107006, "ACL_ERROR_RT_EVENT_TIMESTAMP_INVALID", "event timestamp is not valid"),
    (107007, "ACL_ERROR_RT_EVENT_TIMESTAMP_REVERSAL", "event timestamps out of order"),
    (107008, "ACL_ERROR_RT_ADDR_UNALIGNED", "address misaligned"),
    (107009, "ACL_ERROR_RT_FILE_OPEN", "could not open file"),
    (107010, "ACL_ERROR_RT_FILE_WRITE", "could not write file"),
    (107011, "ACL_ERROR_RT_STREAM_SUBSCRIBE", "stream subscription error"),
    (107012, "ACL_ERROR_RT_THREAD_SUBSCRIBE", "thread subscription error"),
    (107013, "ACL_ERROR_RT_GROUP_NOT_SET", "group not set"),
    (107014, "ACL_ERROR_RT_GROUP_NOT_CREATE", "group not created"),
    (107015, "ACL_ERROR_RT_STREAM_NO_CB_REG", "no callback thread registered for the stream"),
    (107016, "ACL_ERROR_RT_INVALID_MEMORY_TYPE", "wrong kind of memory for this call"),
    (107017, "ACL_ERROR_RT_INVALID_HANDLE", "handle is not valid"),
    (107018, "ACL_ERROR_RT_INVALID_MALLOC_TYPE", "allocation type/policy is not valid"),
    (107019, "ACL_ERROR_RT_WAIT_TIMEOUT", "wait timed out"),
    (107020, "ACL_ERROR_RT_TASK_TIMEOUT", "task timed out"),
    (107021, "ACL_ERROR_RT_SYSPARAMOPT_NOT_SET", "system parameter option not set"),
    (107022, "ACL_ERROR_RT_DEVICE_TASK_ABORT", "device tasks are being aborted"),
    (107023, "ACL_ERROR_RT_STREAM_ABORT", "stream is being aborted"),
    (107024, "ACL_ERROR_RT_CAPTURE_DEPENDENCY", "stream-capture dependency failure"),
    (107025, "ACL_ERROR_RT_STREAM_UNJOINED", "a captured stream was never joined back"),
    (107026, "ACL_ERROR_RT_MODEL_CAPTURED", "model is in captured state"),
    (107027, "ACL_ERROR_RT_STREAM_CAPTURED", "stream is being captured"),
    (107028, "ACL_ERROR_RT_EVENT_CAPTURED", "event is being captured"),
    (107029, "ACL_ERROR_RT_STREAM_NOT_CAPTURED", "stream is not capturing"),
    (107030, "ACL_ERROR_RT_CAPTURE_MODE_NOT_SUPPORT", "operation not allowed while stream is captured"),
    (107031, "ACL_ERROR_RT_STREAM_CAPTURE_IMPLICIT", "implicit default-stream dependency during capture"),
    (107032, "ACL_ERROR_STREAM_CAPTURE_CONFLICT", "dependent streams cannot start capture together"),
    (107033, "ACL_ERROR_STREAM_TASK_GROUP_STATUS", "task group in wrong state"),
    (107034, "ACL_ERROR_STREAM_TASK_GROUP_INTR", "task group interrupted"),
    (107035, "ACL_ERROR_RT_TASK_ABORT_STOP", "task abort stopped before post-processing"),
    (107036, "ACL_ERROR_RT_STREAM_CAPTURE_UNMATCHED", "capture was started on another stream"),
    (107037, "ACL_ERROR_RT_MODEL_RUNNING", "model is still running"),
    (107038, "ACL_ERROR_RT_STREAM_CAPTURE_WRONG_THREAD", "capture ended on a different thread"),
    (107039, "ACL_ERROR_RT_INSUFFICIENT_INPUT_ARRAY", "input array too small"),
    (107040, "ACL_ERROR_RT_MODEL_UPDATE_FAILED", "model update failed"),
    (107041, "ACL_ERROR_RT_CAPTURE_MODE_BLOCK_ASYNC", "blocking operation not allowed while capturing"),
    (107042, "ACL_ERROR_RT_SYMBOL_NOT_FOUND", "symbol not found"),
    (107043, "ACL_ERROR_RT_INVALID_SYMBOL", "device symbol is not valid"),
    (107044, "ACL_ERROR_RT_INVALID_DEVICE_FUNCTION", "device function is not valid"),
    (107045, "ACL_ERROR_RT_SUB_ACLGRAPH_IS_CAPTURING", "sub-graph is being captured"),
    (207000, "ACL_ERROR_RT_FEATURE_NOT_SUPPORT", "feature not supported by runtime or device"),
    (207001, "ACL_ERROR_RT_MEMORY_ALLOCATION", "out of memory"),
    (207002, "ACL_ERROR_RT_MEMORY_FREE", "memory free failed"),
    (207003, "ACL_ERROR_RT_AICORE_OVER_FLOW", "AI Core arithmetic overflow"),
    (207004, "ACL_ERROR_RT_NO_DEVICE", "no device available"),
    (207005, "ACL_ERROR_RT_RESOURCE_ALLOC_FAIL", "resource allocation failed"),
    (207006, "ACL_ERROR_RT_NO_PERMISSION", "permission denied"),
    (207007, "ACL_ERROR_RT_NO_EVENT_RESOURCE", "out of event resources"),
    (207008, "ACL_ERROR_RT_NO_STREAM_RESOURCE", "out of stream resources"),
    (207009, "ACL_ERROR_RT_NO_NOTIFY_RESOURCE", "out of notify resources"),
    (207010, "ACL_ERROR_RT_NO_MODEL_RESOURCE", "out of model resources"),
    (207011, "ACL_ERROR_RT_NO_CDQ_RESOURCE", "out of CDQ resources"),
    (207012, "ACL_ERROR_RT_OVER_LIMIT", "limit exceeded"),
    (207013, "ACL_ERROR_RT_QUEUE_EMPTY", "queue empty"),
    (207014, "ACL_ERROR_RT_QUEUE_FULL", "queue full"),
    (207015, "ACL_ERROR_RT_REPEATED_INIT", "initialized twice"),
    (207016, "ACL_ERROR_RT_AIVEC_OVER_FLOW", "vector core arithmetic overflow"),
    (207017, "ACL_ERROR_RT_OVER_FLOW", "arithmetic overflow"),
    (207018, "ACL_ERROR_RT_DEVICE_OOM", "device out of memory"),
    (207019, "ACL_ERROR_RT_FEATURE_NOT_SUPPORT_UPDATE_OP", "this operator cannot be updated"),
    (207020, "ACL_ERROR_RT_TIMEOUT", "driver timed out"),
    (207021, "ACL_ERROR_RT_LINK_TYPE_NOT_SUPPORTED", "link type not supported"),
    (507000, "ACL_ERROR_RT_INTERNAL_ERROR", "runtime internal error"),
    (507001, "ACL_ERROR_RT_TS_ERROR", "task scheduler internal error"),
    (507002, "ACL_ERROR_RT_STREAM_TASK_FULL", "stream task queue full"),
    (507003, "ACL_ERROR_RT_STREAM_TASK_EMPTY", "stream task queue empty"),
    (507004, "ACL_ERROR_RT_STREAM_NOT_COMPLETE", "stream has unfinished work"),
    (507005, "ACL_ERROR_RT_END_OF_SEQUENCE", "end of sequence reached"),
    (507006, "ACL_ERROR_RT_EVENT_NOT_COMPLETE", "event not yet recorded/complete"),
    (507007, "ACL_ERROR_RT_CONTEXT_RELEASE_ERROR", "context release failed"),
    (507008, "ACL_ERROR_RT_SOC_VERSION", "SoC version mismatch"),
    (507009, "ACL_ERROR_RT_TASK_TYPE_NOT_SUPPORT", "task type not supported"),
    (507010, "ACL_ERROR_RT_LOST_HEARTBEAT", "task scheduler heartbeat lost"),
    (507011, "ACL_ERROR_RT_MODEL_EXECUTE", "model execution failed"),
    (507012, "ACL_ERROR_RT_REPORT_TIMEOUT", "callback report wait timed out"),
    (507013, "ACL_ERROR_RT_SYS_DMA", "system DMA error"),
    (507014, "ACL_ERROR_RT_AICORE_TIMEOUT", "AI Core task timed out"),
    (507015, "ACL_ERROR_RT_AICORE_EXCEPTION", "AI Core exception"),
    (507016, "ACL_ERROR_RT_AICORE_TRAP_EXCEPTION", "AI Core trap"),
    (507017, "ACL_ERROR_RT_AICPU_TIMEOUT", "AI CPU task timed out"),
    (507018, "ACL_ERROR_RT_AICPU_EXCEPTION", "AI CPU exception"),
    (507019, "ACL_ERROR_RT_AICPU_DATADUMP_RSP_ERR", "AI CPU data-dump reply error"),
    (507020, "ACL_ERROR_RT_AICPU_MODEL_RSP_ERR", "AI CPU model-operation reply error"),
    (507021, "ACL_ERROR_RT_PROFILING_ERROR", "runtime profiling error"),
    (507022, "ACL_ERROR_RT_IPC_ERROR", "inter-process communication error"),
    (507023, "ACL_ERROR_RT_MODEL_ABORT_NORMAL", "model aborted (normal abort)"),
    (507024, "ACL_ERROR_RT_KERNEL_UNREGISTERING", "kernel is being unregistered"),
    (507025, "ACL_ERROR_RT_RINGBUFFER_NOT_INIT", "ring buffer not initialized"),
    (507026, "ACL_ERROR_RT_RINGBUFFER_NO_DATA", "ring buffer empty"),
    (507027, "ACL_ERROR_RT_KERNEL_LOOKUP", "kernel lookup failed"),
    (507028, "ACL_ERROR_RT_KERNEL_DUPLICATE", "kernel registered twice"),
    (507029, "ACL_ERROR_RT_DEBUG_REGISTER_FAIL", "debug registration failed"),
    (507030, "ACL_ERROR_RT_DEBUG_UNREGISTER_FAIL", "debug unregistration failed"),
    (507031, "ACL_ERROR_RT_LABEL_CONTEXT", "label belongs to another context"),
    (507032, "ACL_ERROR_RT_PROGRAM_USE_OUT", "program registration slots exhausted"),
    (507033, "ACL_ERROR_RT_DEV_SETUP_ERROR", "device setup failed"),
    (507034, "ACL_ERROR_RT_VECTOR_CORE_TIMEOUT", "vector core task timed out"),
    (507035, "ACL_ERROR_RT_VECTOR_CORE_EXCEPTION", "vector core exception"),
    (507036, "ACL_ERROR_RT_VECTOR_CORE_TRAP_EXCEPTION", "vector core trap"),
    (507037, "ACL_ERROR_RT_CDQ_BATCH_ABNORMAL", "CDQ batch allocation abnormal"),
    (507038, "ACL_ERROR_RT_DIE_MODE_CHANGE_ERROR", "die mode cannot be changed"),
    (507039, "ACL_ERROR_RT_DIE_SET_ERROR", "die cannot be set in single-die mode"),
    (507040, "ACL_ERROR_RT_INVALID_DIEID", "die ID is not valid"),
    (507041, "ACL_ERROR_RT_DIE_MODE_NOT_SET", "die mode not set"),
    (507042, "ACL_ERROR_RT_AICORE_TRAP_READ_OVERFLOW", "AI Core trap: out-of-bounds read"),
    (507043, "ACL_ERROR_RT_AICORE_TRAP_WRITE_OVERFLOW", "AI Core trap: out-of-bounds write"),
    (507044, "ACL_ERROR_RT_VECTOR_CORE_TRAP_READ_OVERFLOW", "vector core trap: out-of-bounds read"),
    (507045, "ACL_ERROR_RT_VECTOR_CORE_TRAP_WRITE_OVERFLOW", "vector core trap: out-of-bounds write"),
    (507046, "ACL_ERROR_RT_STREAM_SYNC_TIMEOUT", "stream synchronization timed out"),
    (507047, "ACL_ERROR_RT_EVENT_SYNC_TIMEOUT", "event synchronization timed out"),
    (507048, "ACL_ERROR_RT_FFTS_PLUS_TIMEOUT", "FFTS+ task timed out"),
    (507049, "ACL_ERROR_RT_FFTS_PLUS_EXCEPTION", "FFTS+ exception"),
    (507050, "ACL_ERROR_RT_FFTS_PLUS_TRAP_EXCEPTION", "FFTS+ trap"),
    (507051, "ACL_ERROR_RT_SEND_MSG", "host-device message send failed"),
    (507052, "ACL_ERROR_RT_COPY_DATA", "data copy failed"),
    (507053, "ACL_ERROR_RT_DEVICE_MEM_ERROR", "device memory fault"),
    (507054, "ACL_ERROR_RT_HBM_MULTI_BIT_ECC_ERROR", "uncorrectable (multi-bit) HBM ECC error"),
    (507055, "ACL_ERROR_RT_SUSPECT_DEVICE_MEM_ERROR", "possible device memory fault"),
    (507056, "ACL_ERROR_RT_LINK_ERROR", "interconnect link fault"),
    (507057, "ACL_ERROR_RT_SUSPECT_REMOTE_ERROR", "possible fault on the remote side"),
    (507899, "ACL_ERROR_RT_DRV_INTERNAL_ERROR", "driver internal error"),
    (507900, "ACL_ERROR_RT_AICPU_INTERNAL_ERROR", "AI CPU internal error"),
    (507901, "ACL_ERROR_RT_SOCKET_CLOSE", "host-device connection closed"),
    (507902, "ACL_ERROR_RT_AICPU_INFO_LOAD_RSP_ERR", "AI CPU info-load reply error"),
    (507903, "ACL_ERROR_RT_STREAM_CAPTURE_INVALIDATED", "stream capture invalidated"),
    (507904, "ACL_ERROR_RT_COMM_OP_RETRY_FAIL", "collective operation retry failed"),
    (507905, "ACL_ERROR_SNAPSHOT_LOCK_TIMEOUT", "snapshot lock timed out"),
    (507906, "ACL_ERROR_SNAPSHOT_LOCK_FAILED", "snapshot lock failed"),
    (507907, "ACL_ERROR_SNAPSHOT_UNLOCK_FAILED", "snapshot unlock failed"),
    (507908, "ACL_ERROR_SNAPSHOT_BACKUP_FAILED", "snapshot backup failed"),
    (507909, "ACL_ERROR_SNAPSHOT_RESTORE_FAILED", "snapshot restore failed"),
    (507910, "ACL_ERROR_HOST_MEMORY_ALREADY_REGISTERED", "host memory range already registered"),
    (507911, "ACL_ERROR_HOST_MEMORY_NOT_REGISTERED", "host memory not registered"),
    (507912, "ACL_ERROR_SNAPSHOT_CALLBACK_FAILED", "snapshot callback failed"),
    (507913, "ACL_ERROR_SNAPSHOT_REGISTER_CALLBACK_FAILED", "snapshot callback registration failed"),
    (507914, "ACL_ERROR_RT_L3_PORT_ERROR", "L3 port fault"),
    (507915, "ACL_ERROR_RT_CCU_TIMEOUT", "CCU timed out"),
    (507916, "ACL_ERROR_RT_CCU_EXCEPTION", "CCU exception"),
    # ---- graph-engine codes (error_codes/ge_error_codes.h) ----
    (145000, "ACL_ERROR_GE_PARAM_INVALID", "graph engine rejected an argument"),
    (145001, "ACL_ERROR_GE_EXEC_NOT_INIT", "graph engine not initialized"),
    (145002, "ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID", "model path is not valid"),
    (145003, "ACL_ERROR_GE_EXEC_MODEL_ID_INVALID", "model ID unknown or not loaded"),
    (145006, "ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID", "model data size is not valid"),
    (145007, "ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID", "model memory address is not valid"),
    (145008, "ACL_ERROR_GE_EXEC_MODEL_QUEUE_ID_INVALID", "model queue ID is not valid"),
    (145009, "ACL_ERROR_GE_EXEC_LOAD_MODEL_REPEATED", "model loaded twice"),
    (145011, "ACL_ERROR_GE_DYNAMIC_INPUT_ADDR_INVALID", "dynamic-input address is not valid"),
    (145012, "ACL_ERROR_GE_DYNAMIC_INPUT_LENGTH_INVALID", "dynamic-input length is not valid"),
    (145013, "ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID", "batch size is not one of the model's gears"),
    (145014, "ACL_ERROR_GE_AIPP_BATCH_EMPTY", "AIPP batch is empty"),
    (145015, "ACL_ERROR_GE_AIPP_NOT_EXIST", "AIPP configuration missing"),
    (145016, "ACL_ERROR_GE_AIPP_MODE_INVALID", "AIPP mode is not valid"),
    (145017, "ACL_ERROR_GE_OP_TASK_TYPE_INVALID", "operator task type is not valid"),
    (145018, "ACL_ERROR_GE_OP_KERNEL_TYPE_INVALID", "operator kernel type is not valid"),
    (145019, "ACL_ERROR_GE_PLGMGR_PATH_INVALID", "plugin manager path is not valid"),
    (145020, "ACL_ERROR_GE_FORMAT_INVALID", "tensor format is not valid"),
    (145021, "ACL_ERROR_GE_SHAPE_INVALID", "tensor shape is not valid"),
    (145022, "ACL_ERROR_GE_DATATYPE_INVALID", "tensor data type is not valid"),
    (245000, "ACL_ERROR_GE_MEMORY_ALLOCATION", "graph engine out of memory"),
    (245001, "ACL_ERROR_GE_MEMORY_OPERATE_FAILED", "memory operation failed"),
    (245002, "ACL_ERROR_GE_DEVICE_MEMORY_OPERATE_FAILED", "device memory operation failed"),
    (345102, "ACL_ERROR_GE_SUBHEALTHY", "device or deployment is sub-healthy"),
    (345103, "ACL_ERROR_GE_USER_RAISE_EXCEPTION", "exception raised by user code"),
    (345104, "ACL_ERROR_GE_DATA_NOT_ALIGNED", "data misaligned"),
    (545000, "ACL_ERROR_GE_INTERNAL_ERROR", "graph engine internal error"),
    (545001, "ACL_ERROR_GE_LOAD_MODEL", "model load failed"),
    (545002, "ACL_ERROR_GE_EXEC_LOAD_MODEL_PARTITION_FAILED", "loading the model partition failed"),
    (545003, "ACL_ERROR_GE_EXEC_LOAD_WEIGHT_PARTITION_FAILED", "loading the weight partition failed"),
    (545004, "ACL_ERROR_GE_EXEC_LOAD_TASK_PARTITION_FAILED", "loading the task partition failed"),
    (545005, "ACL_ERROR_GE_EXEC_LOAD_KERNEL_PARTITION_FAILED", "loading the kernel partition failed"),
    (545006, "ACL_ERROR_GE_EXEC_RELEASE_MODEL_DATA", "releasing model data failed"),
    (545007, "ACL_ERROR_GE_COMMAND_HANDLE", "command handling failed"),
    (545008, "ACL_ERROR_GE_GET_TENSOR_INFO", "could not get tensor info"),
    (545009, "ACL_ERROR_GE_UNLOAD_MODEL", "model unload failed"),
    (545601, "ACL_ERROR_GE_MODEL_EXECUTE_TIMEOUT", "model execution timed out"),
    (545602, "ACL_ERROR_GE_REDEPLOYING", "model is being redeployed"),
)

#: code value -> primary symbolic name
NAMES: dict[int, str] = {value: name for value, name, _ in _CODES}

#: secondary names -> value (each value also has a primary name in NAMES)
ALIASES: dict[str, int] = {
    "ACL_ERROR_NONE": 0,  # acl_base_rt.h, same value as ACL_SUCCESS
    "ACL_RT_SUCCESS": 0,  # rt_error_codes.h, same value as ACL_SUCCESS
}

#: code value -> short English description
DESCRIPTIONS: dict[int, str] = {value: desc for value, _, desc in _CODES}

# ---- categories used to pick exception subclasses (pairwise disjoint) ----

#: memory could not be allocated
OUT_OF_MEMORY: frozenset = frozenset({
    200000,  # ACL_ERROR_BAD_ALLOC
    207001,  # ACL_ERROR_RT_MEMORY_ALLOCATION
    207018,  # ACL_ERROR_RT_DEVICE_OOM
    245000,  # ACL_ERROR_GE_MEMORY_ALLOCATION
})

#: something timed out
TIMEOUT: frozenset = frozenset({
    100036,  # ACL_ERROR_WAIT_CALLBACK_TIMEOUT
    107019,  # ACL_ERROR_RT_WAIT_TIMEOUT
    107020,  # ACL_ERROR_RT_TASK_TIMEOUT
    207020,  # ACL_ERROR_RT_TIMEOUT
    507012,  # ACL_ERROR_RT_REPORT_TIMEOUT
    507014,  # ACL_ERROR_RT_AICORE_TIMEOUT
    507017,  # ACL_ERROR_RT_AICPU_TIMEOUT
    507034,  # ACL_ERROR_RT_VECTOR_CORE_TIMEOUT
    507046,  # ACL_ERROR_RT_STREAM_SYNC_TIMEOUT
    507047,  # ACL_ERROR_RT_EVENT_SYNC_TIMEOUT
    507048,  # ACL_ERROR_RT_FFTS_PLUS_TIMEOUT
    507905,  # ACL_ERROR_SNAPSHOT_LOCK_TIMEOUT
    507915,  # ACL_ERROR_RT_CCU_TIMEOUT
    545601,  # ACL_ERROR_GE_MODEL_EXECUTE_TIMEOUT
})

#: an argument value was rejected as malformed (bad value, size, alignment,
#: type, shape). Identifiers that do not name a live object (model ID, handle,
#: queue ID) are deliberately not here.
INVALID_PARAM: frozenset = frozenset({
    100000,  # ACL_ERROR_INVALID_PARAM
    107000,  # ACL_ERROR_RT_PARAM_INVALID
    145000,  # ACL_ERROR_GE_PARAM_INVALID
    107001,  # ACL_ERROR_RT_INVALID_DEVICEID
    107008,  # ACL_ERROR_RT_ADDR_UNALIGNED
    107016,  # ACL_ERROR_RT_INVALID_MEMORY_TYPE
    107018,  # ACL_ERROR_RT_INVALID_MALLOC_TYPE
    200003,  # ACL_ERROR_MEMORY_ADDRESS_UNALIGNED
    145006,  # ACL_ERROR_GE_EXEC_MODEL_DATA_SIZE_INVALID
    145007,  # ACL_ERROR_GE_EXEC_MODEL_ADDR_INVALID
    145011,  # ACL_ERROR_GE_DYNAMIC_INPUT_ADDR_INVALID
    145012,  # ACL_ERROR_GE_DYNAMIC_INPUT_LENGTH_INVALID
    145013,  # ACL_ERROR_GE_DYNAMIC_BATCH_SIZE_INVALID
    145016,  # ACL_ERROR_GE_AIPP_MODE_INVALID
    145020,  # ACL_ERROR_GE_FORMAT_INVALID
    145021,  # ACL_ERROR_GE_SHAPE_INVALID
    145022,  # ACL_ERROR_GE_DATATYPE_INVALID
})

#: the API, feature, type or mode is not supported (here, or in this state)
NOT_SUPPORTED: frozenset = frozenset({
    200001,  # ACL_ERROR_API_NOT_SUPPORT
    200006,  # ACL_ERROR_FEATURE_UNSUPPORTED
    200007,  # ACL_ERROR_PROF_MODULES_UNSUPPORTED
    207000,  # ACL_ERROR_RT_FEATURE_NOT_SUPPORT
    207019,  # ACL_ERROR_RT_FEATURE_NOT_SUPPORT_UPDATE_OP
    207021,  # ACL_ERROR_RT_LINK_TYPE_NOT_SUPPORTED
    507009,  # ACL_ERROR_RT_TASK_TYPE_NOT_SUPPORT
    107030,  # ACL_ERROR_RT_CAPTURE_MODE_NOT_SUPPORT
    107041,  # ACL_ERROR_RT_CAPTURE_MODE_BLOCK_ASYNC
    100026,  # ACL_ERROR_UNSUPPORTED_DATA_TYPE
    148050,  # ACL_ERROR_OP_UNSUPPORTED_DYNAMIC
    148052,  # ACL_ERROR_UNSUPPORTED_JPEG
})


def name_of(code: int) -> str:
    """Primary symbolic name of ``code``, or ``UNKNOWN_ACL_ERROR_<code>``."""
    name = NAMES.get(code)
    return name if name is not None else f"UNKNOWN_ACL_ERROR_{code}"
