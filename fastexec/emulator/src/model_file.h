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
#define EMU_MAX_DYN 64   /* -1 dims over all inputs of a dynamic_hw / dynamic_dims / dynamic_shape model */

typedef enum {
    EMU_KERNEL_IDENTITY = 0,
    EMU_KERNEL_AFFINE = 1,
    EMU_KERNEL_SEGMENT_SUM = 2,
} emu_kernel_kind;

/* Which dynamic profile a model declares (at most one). */
typedef enum {
    EMU_DYN_NONE = 0,
    EMU_DYN_BATCH = 1,    /* dynamic_batch: every tensor's dims[0] is -1 */
    EMU_DYN_HW = 2,       /* dynamic_hw: (height, width) gears for the -1 H/W dims */
    EMU_DYN_DIMS = 3,     /* dynamic_dims: gears giving every -1 dim of the inputs a value */
    EMU_DYN_SHAPE = 4,    /* dynamic_shape: a (min, max) range for every -1 dim of the inputs */
} emu_dyn_kind;

typedef struct {
    char name[ACL_MAX_TENSOR_NAME_LEN];
    aclDataType dtype;
    aclFormat format;
    size_t ndims;                    /* >= 1; axis 0 is the batch axis */
    int64_t dims[ACL_MAX_DIM_CNT];   /* -1: a dynamic dim (dims[0] of a dynamic-batch model, ...) */
    size_t elem_size;                /* aclDataTypeSize(dtype) */
    size_t sample_elems;             /* product of dims[1:] (a -1 there counts as 1) */
} emu_tensor_def;

/* AIPP of one input (the `aipp` lines; docs/model-format.md, "AIPP"). The input line declares
 * the tensor the kernel reads (the AIPP output); the runtime shows the raw image instead. */
typedef enum { EMU_AIPP_NONE = 0, EMU_AIPP_STATIC = 1, EMU_AIPP_DYNAMIC = 2 } emu_aipp_mode;

typedef struct {
    int64_t mode;                    /* emu_aipp_mode */
    int64_t input_format;            /* aclAippInputFormat; 0 = not given */
    int64_t src_w, src_h;            /* src_image_size_w / _h */
    int64_t crop, crop_x, crop_y, crop_w, crop_h;
    int64_t padding, pad_left, pad_right, pad_top, pad_bottom;
    double padding_value;
    int64_t csc, rbuv_swap, ax_swap;
    int64_t matrix[9];               /* matrix_r0c0 .. matrix_r2c2 */
    int64_t output_bias[3], input_bias[3];
    int64_t mean[4];                 /* mean_chn_0 .. 3 */
    double min[4], var_reci[4];      /* min_chn_i, var_reci_chn_i as written (rounded when run) */
    int64_t max_src_image_size;      /* dynamic: bytes of the raw input for the whole batch */
} emu_aipp_def;

/* One batch entry of dynamic AIPP parameters, as aclmdlSetInputAIPP stores them. */
typedef struct {
    int64_t crop, crop_x, crop_y, crop_w, crop_h;
    int64_t padding, pad_top, pad_bottom, pad_left, pad_right;
    int64_t mean[4];
    uint16_t min_h[4], var_reci_h[4];   /* binary16 */
} emu_aipp_batch;

/* Layout of the ACL_DYNAMIC_AIPP_NAME tensor: a 64-byte header and 96 bytes per batch entry. */
#define EMU_AIPP_HEADER_BYTES 64u
#define EMU_AIPP_BATCH_BYTES 96u

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
    emu_aipp_def aipp[EMU_MAX_IO];   /* per input; mode EMU_AIPP_NONE without `aipp` lines */
    uint64_t per_element_ns;         /* modelled extra time per input element */
    emu_dyn_kind dyn_kind;
    size_t num_dyn;                  /* -1 dims over the inputs, in order (input 0 first) */
    size_t num_hw;                   /* dynamic_hw gears */
    uint64_t hw[ACL_MAX_HW_NUM][2];
    size_t num_dims_gears;           /* dynamic_dims gears, num_dyn values each */
    int64_t dims_gears[ACL_MAX_SHAPE_COUNT][EMU_MAX_DYN];
    int64_t ranges[EMU_MAX_DYN][2];  /* dynamic_shape: num_dyn (min, max) ranges */
} emu_model_def;

/* The values of a model's -1 input dims for one execution, in order. */
typedef struct {
    int64_t v[EMU_MAX_DYN];
} emu_dyn_values;

/* Parse a model file held in memory. On failure returns ACL_ERROR_PARSE_MODEL and writes a
 * message naming the line ("line 4: ...") into err. */
aclError emu_model_parse(const char *text, size_t len, emu_model_def *out, char *err, size_t errlen);

/* Bytes of one tensor for `batch` samples (batch replaces dims[0]). */
size_t emu_tensor_bytes(const emu_tensor_def *t, uint64_t batch);

/* Batch of a static model (dims[0] of input 0); for a dynamic model, the largest gear. */
uint64_t emu_model_max_batch(const emu_model_def *m);

/* Entries of the model's profile: its gears, or 2 (the lower and the upper bounds) for
 * dynamic_shape; 0 for a static model. */
size_t emu_model_profile_count(const emu_model_def *m);

/* Entry i of the profile as the values of the -1 input dims. */
void emu_model_profile_values(const emu_model_def *m, size_t i, emu_dyn_values *v);

/* The values for a static or dynamic-batch execution at `batch` (every -1 dim takes it). */
void emu_model_batch_values(const emu_model_def *m, uint64_t batch, emu_dyn_values *v);

/* Tensor dims with the -1 dims filled from `v` (an output's -1 dim is its input's on that axis). */
void emu_shape_dims(const emu_model_def *m, const emu_dyn_values *v, int output, size_t k, int64_t *dims);

/* Bytes of a tensor at those dims (saturates at SIZE_MAX). */
size_t emu_shape_bytes(const emu_model_def *m, const emu_dyn_values *v, int output, size_t k);

/* Modelled time of one execution: compute_ns + per_sample_ns x dims[0] of input 0 +
 * per_element_ns x the input elements. */
uint64_t emu_shape_exec_ns(const emu_model_def *m, const emu_dyn_values *v);

/* Run the kernel at the shapes given by `v`; buffers hold emu_shape_bytes(...) bytes each. */
void emu_kernel_run_values(const emu_model_def *m, const emu_dyn_values *v, const void *const *inputs, void *const *outputs);

/* Run the model's kernel over `batch` samples. inputs[k] / outputs[k] hold
 * emu_tensor_bytes(...) bytes each. Output k is computed from input k. */
void emu_kernel_run(const emu_model_def *m, uint64_t batch, const void *const *inputs, void *const *outputs);

/* ------------------------------------------------------------------------------------ AIPP */

/* Index of the model's dynamic-AIPP input, or -1. */
int emu_aipp_dynamic_input(const emu_model_def *m);

/* Input k as the runtime shows it: the raw image of an AIPP input (uint8 NHWC n,h*3/2,w,1 /
 * n,h,w,3 / n,h,w,1, or ND n,max_src_image_size/n for dynamic AIPP), otherwise the tensor
 * itself. `v1` gives aclmdlGetInputDims's n,h,w,c form instead of the byte layout. */
void emu_input_visible(const emu_model_def *m, size_t k, int v1, emu_tensor_def *out);

/* Bytes of the dynamic AIPP parameter tensor for `batch` entries (aclmdlGetAippDataSize). */
size_t emu_aipp_data_size(uint64_t batch);

/* Run the model: its AIPP (static models only), then its kernel, over `batch` samples at the
 * shapes `v` gives (emu_model_batch_values for a static / dynamic-batch model). inputs[k] are the
 * inputs as the runtime shows them (raw images for AIPP inputs), `aipp_data` the dynamic AIPP
 * parameter tensor (NULL without one). Returns 0, or -1 with a message in err when the dynamic
 * AIPP parameters cannot be run. */
int emu_model_run(const emu_model_def *m, uint64_t batch, const emu_dyn_values *v, const void *const *inputs,
                  void *const *outputs, const void *aipp_data, size_t aipp_len, char *err, size_t errlen);

/* binary16 conversions (correctly rounded), as the AIPP setters store their float parameters. */
uint16_t emu_float_to_half(float f);
double emu_half_to_double(uint16_t h);

#endif
