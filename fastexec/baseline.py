"""The loop fastexec is measured against: a model run the way ACLLite and pyACL users run it.

Per batch, in Python: allocate device memory for every input and output, copy the inputs in
with a synchronous aclrtMemcpy from pageable (numpy) memory, build the datasets and call the
synchronous aclmdlExecute (:meth:`fastexec.Model.execute`), copy the outputs back the same way,
free everything. Nothing overlaps: each step waits for the one before it.
"""
import numpy as np


def naive_run(model, inputs) -> list:
    """Run `inputs` (one C-contiguous array per model input, N rows each) through `model`
    batch by batch (the last one zero-padded) and return one array per output, N rows each.
    The model must not be used by an Executor (ACL forbids mixing sync and async execution)."""
    from . import DeviceBuffer

    B = model.batch_size
    arrays = [np.ascontiguousarray(a) for a in inputs]
    n = arrays[0].shape[0]
    outputs = [np.empty((n,) + tuple(s.shape[1:]), dtype=s.dtype) for s in model.outputs]
    for start in range(0, n, B):
        rows = min(B, n - start)
        buffers = []
        try:
            ins = []
            for spec, a in zip(model.inputs, arrays):
                host = np.zeros((B,) + tuple(spec.shape[1:]), dtype=spec.dtype)
                host[:rows] = a[start:start + rows]
                buf = DeviceBuffer(model.device, spec.nbytes)
                buffers.append(buf)
                buf.copy_from_host(host)
                ins.append(buf)
            outs = []
            for spec in model.outputs:
                buf = DeviceBuffer(model.device, spec.nbytes)
                buffers.append(buf)
                outs.append(buf)
            model.execute(ins, outs)
            for out, spec, buf in zip(outputs, model.outputs, outs):
                host = np.empty((B,) + tuple(spec.shape[1:]), dtype=spec.dtype)
                buf.copy_to_host(host)
                out[start:start + rows] = host[:rows]
        finally:
            for buf in buffers:
                buf.close()
    return outputs
