# naive_run: the loop fastexec is measured against, written the way ACLLite and pyACL users
# write it. Included by fastexec/_core.pyx; kept apart from the executor, which it shares nothing with.

def naive_run(Model model not None, inputs):
    """The loop fastexec is measured against: how ACLLite and pyACL users run a model. Per
    batch, holding the GIL throughout: allocate device memory, build datasets, copy in with a
    synchronous aclrtMemcpy from pageable memory, aclmdlExecute, copy out, free everything.
    `inputs`: one C-contiguous array per model input with N rows; returns one array per output.
    The model must not be used by an Executor (ACL forbids mixing sync and async execution)."""
    cdef Device dev = model.device
    dev.activate()
    specs_in = [s for s in model.inputs]
    specs_out = [s for s in model.outputs]
    cdef uint64_t B = model.batch_size
    arrays = [np.ascontiguousarray(a) for a in inputs]
    n = arrays[0].shape[0]
    outputs = [np.empty((n,) + tuple(s.shape[1:]), dtype=s.dtype) for s in specs_out]
    cdef void* p
    cdef aclmdlDataset* ds_in
    cdef aclmdlDataset* ds_out
    cdef aclDataBuffer* buf
    cdef size_t nbytes, rows_bytes
    cdef cnp.ndarray host
    for start in range(0, n, B):
        rows = min(B, n - start)
        ds_in = aclmdlCreateDataset()
        ds_out = aclmdlCreateDataset()
        dev_in, dev_out = [], []
        try:
            for spec, a in zip(specs_in, arrays):
                nbytes = spec.nbytes
                check(aclrtMalloc(&p, nbytes, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc")
                dev_in.append(<size_t>p)
                host = np.zeros((B,) + tuple(spec.shape[1:]), dtype=spec.dtype)
                host[:rows] = a[start:start + rows]
                check(aclrtMemcpy(p, nbytes, cnp.PyArray_DATA(host), nbytes, ACL_MEMCPY_HOST_TO_DEVICE), "aclrtMemcpy")
                buf = aclCreateDataBuffer(p, nbytes)
                check(aclmdlAddDatasetBuffer(ds_in, buf), "aclmdlAddDatasetBuffer")
            if model.dynamic_input_index >= 0:   # the dynamic-batch tensor, set per call as the samples do
                check(aclrtMalloc(&p, 8, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc")
                dev_in.append(<size_t>p)
                buf = aclCreateDataBuffer(p, 8)
                check(aclmdlAddDatasetBuffer(ds_in, buf), "aclmdlAddDatasetBuffer")
                check(aclmdlSetDynamicBatchSize(model.model_id, ds_in, aclmdlGetDatasetNumBuffers(ds_in) - 1, B),
                      "aclmdlSetDynamicBatchSize")
            for spec in specs_out:
                nbytes = spec.nbytes
                check(aclrtMalloc(&p, nbytes, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc")
                dev_out.append(<size_t>p)
                buf = aclCreateDataBuffer(p, nbytes)
                check(aclmdlAddDatasetBuffer(ds_out, buf), "aclmdlAddDatasetBuffer")
            check(aclmdlExecute(model.model_id, ds_in, ds_out), "aclmdlExecute")
            for i, spec in enumerate(specs_out):
                host = np.empty((B,) + tuple(spec.shape[1:]), dtype=spec.dtype)
                check(aclrtMemcpy(cnp.PyArray_DATA(host), spec.nbytes, <void*><size_t>dev_out[i], spec.nbytes,
                                  ACL_MEMCPY_DEVICE_TO_HOST), "aclrtMemcpy")
                outputs[i][start:start + rows] = host[:rows]
        finally:
            for ds in (<size_t>ds_in, <size_t>ds_out):
                for j in range(aclmdlGetDatasetNumBuffers(<aclmdlDataset*>ds)):
                    aclDestroyDataBuffer(aclmdlGetDatasetBuffer(<aclmdlDataset*>ds, j))
                aclmdlDestroyDataset(<aclmdlDataset*>ds)
            for q in dev_in + dev_out:
                aclrtFree(<void*><size_t>q)
    return outputs
