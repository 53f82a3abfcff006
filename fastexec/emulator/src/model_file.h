/* The emulator's model file: parsing and the deterministic compute kernels.
 *
 * The format is documented in docs/model-format.md. This module knows nothing about
 * streams, memory or timing: it turns text into an emu_model_def and runs a kernel over
 * host-addressable buffers.
 */
#ifndef FASTEXEC_EMU_MODEL_FILE_H
#define FASTEXEC_EMU_MODEL_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "acl/acl.h"

#define EMU_MODEL_FORMAT_VERSION 1
#define EMU_MODEL_MAGIC "fastexec-emulator-model"
#define EMU_MAX_IO 32

typedef enum {
    EMU_KERNEL_IDENTITY = 0,
    EMU_KERNEL_AFFINE = 1,
    EMU_KERNEL_SEGMENT_SUM = 2,
} emu_kernel_kind;

typedef struct {
    char name[ACL_MAX_TENSOR_NAME_LEN];
    aclDataType dtype;
    aclFormat format;
    size_t ndims;                    /* >= 1; axis 0 is the batch axis */
    int64_t dims[ACL_MAX_DIM_CNT];   /* dims[0] == -1 for a dynamic-batch model */
    size_t elem_size;                /* aclDataTypeSize(dtype) */
    size_t sample_elems;             /* product of dims[1:] */
} emu_tensor_def;

typedef struct {
    char name[ACL_MAX_TENSOR_NAME_LEN];
    size_t num_inputs;               /* data inputs only; the dynamic-batch tensor is added by the runtime */
    size_t num_outputs;
    emu_tensor_def inputs[EMU_MAX_IO];
    emu_tensor_def outputs[EMU_MAX_IO];
    emu_kernel_kind kernel;
    double scale;                    /* affine / segment_sum: y = x * scale + bias */
    double bias;
    uint64_t compute_ns;             /* modelled time of one execution: compute_ns + per_sample_ns * batch */
    uint64_t per_sample_ns;
    size_t num_gears;                /* dynamic-batch gears, ascending; 0 = static model */
    uint64_t gears[ACL_MAX_BATCH_NUM];
    size_t workspace_bytes;          /* reported by aclmdlQuerySize */
    size_t weight_bytes;
} emu_model_def;

/* Parse a model file held in memory. On failure returns ACL_ERROR_PARSE_MODEL and writes a
 * message naming the line ("line 4: ...") into err. */
aclError emu_model_parse(const char *text, size_t len, emu_model_def *out, char *err, size_t errlen);

/* Bytes of one tensor for `batch` samples (batch replaces dims[0]). */
size_t emu_tensor_bytes(const emu_tensor_def *t, uint64_t batch);

/* Batch of a static model (dims[0] of input 0); for a dynamic model, the largest gear. */
uint64_t emu_model_max_batch(const emu_model_def *m);

/* Run the model's kernel over `batch` samples. inputs[k] / outputs[k] hold
 * emu_tensor_bytes(...) bytes each. Output k is computed from input k. */
void emu_kernel_run(const emu_model_def *m, uint64_t batch, const void *const *inputs, void *const *outputs);

#endif
