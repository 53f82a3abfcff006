/* Tensor descriptions (aclTensorDesc): data type, format, shape and shape ranges. A description
 * is either one object (aclCreateTensorDesc) or an array of them (aclmdlCreateAndGetOpDesc,
 * read with aclGetTensorDescByIndex); aclDestroyTensorDesc frees a whole array. */
#include "emu.h"

#include <stdlib.h>

aclTensorDesc *emu_tensor_desc_array(size_t n)
{
    if (n == 0) return NULL;
    aclTensorDesc *a = calloc(n, sizeof *a);
    for (size_t i = 0; i < n; i++) {
        a[i].dtype = ACL_DT_UNDEFINED;
        a[i].format = ACL_FORMAT_UNDEFINED;
        a[i].array_elem = i > 0;
        emu_handle_add(&a[i], EMU_H_TENSORDESC);
    }
    a[0].array_len = n;
    atomic_fetch_add(&emu_live.tensor_descs, 1);
    return a;
}

void emu_tensor_desc_set(aclTensorDesc *d, aclDataType dtype, aclFormat format, size_t ndims, const int64_t *dims)
{
    d->dtype = dtype;
    d->format = format;
    d->ndims = ndims < ACL_MAX_DIM_CNT ? ndims : ACL_MAX_DIM_CNT;
    if (d->ndims) memcpy(d->dims, dims, d->ndims * sizeof dims[0]);
    d->nranges = 0;
}

void emu_tensor_desc_free(aclTensorDesc *d)
{
    size_t n = d->array_len;
    for (size_t i = 0; i < n; i++) emu_handle_remove(&d[i], EMU_H_TENSORDESC);
    atomic_fetch_sub(&emu_live.tensor_descs, 1);
    free(d);
}

/* A live description, or NULL (a destroyed one counts as a finding). */
static const aclTensorDesc *live(const aclTensorDesc *d, const char *api)
{
    emu_init_once();
    return d && emu_check_handle(d, EMU_H_TENSORDESC, api) == ACL_SUCCESS ? d : NULL;
}

EMU_API aclTensorDesc *aclCreateTensorDesc(aclDataType dataType, int numDims, const int64_t *dims, aclFormat format)
{
    emu_init_once();
    if (atomic_load_explicit(&emu_fault_rules, memory_order_relaxed) && emu_fault_call("aclCreateTensorDesc")) return NULL;
    if (numDims < 0 || numDims > ACL_MAX_DIM_CNT || (numDims > 0 && !dims)) {
        emu_fail(ACL_ERROR_INVALID_PARAM, "aclCreateTensorDesc: numDims must be 0..%d with dims set (got %d, dims %s)", ACL_MAX_DIM_CNT, numDims,
                 dims ? "set" : "NULL");
        return NULL;
    }
    aclTensorDesc *d = emu_tensor_desc_array(1);
    emu_tensor_desc_set(d, dataType, format, (size_t)numDims, dims);
    return d;
}

EMU_API void aclDestroyTensorDesc(const aclTensorDesc *desc)
{
    emu_init_once();
    if (!desc) return;   /* documented as a no-op */
    if (emu_check_handle(desc, EMU_H_TENSORDESC, "aclDestroyTensorDesc")) return;
    if (desc->array_elem) {
        emu_fail(ACL_ERROR_INVALID_PARAM, "aclDestroyTensorDesc: %p is element of an array of descriptions; destroy the array's first element", (void *)desc);
        return;
    }
    emu_tensor_desc_free((aclTensorDesc *)desc);
}

EMU_API aclTensorDesc *aclGetTensorDescByIndex(aclTensorDesc *desc, size_t index)
{
    const aclTensorDesc *d = live(desc, "aclGetTensorDescByIndex");
    if (!d) return NULL;
    if (d->array_elem || index >= d->array_len) {
        emu_fail(ACL_ERROR_INVALID_PARAM, "aclGetTensorDescByIndex: index %zu is out of range (the array holds %zu)", index,
                 d->array_elem ? (size_t)1 : d->array_len);
        return NULL;
    }
    return desc + index;
}

EMU_API size_t aclGetTensorDescNumDims(const aclTensorDesc *desc)
{
    const aclTensorDesc *d = live(desc, "aclGetTensorDescNumDims");
    return d ? d->ndims : 0;
}

EMU_API aclError aclGetTensorDescDimV2(const aclTensorDesc *desc, size_t index, int64_t *dimSize)
{
    EMU_ENTER("aclGetTensorDescDimV2");
    if (!dimSize) return emu_fail(ACL_ERROR_INVALID_PARAM, "aclGetTensorDescDimV2: dimSize is NULL");
    aclError rc = emu_check_handle(desc, EMU_H_TENSORDESC, "aclGetTensorDescDimV2");
    if (rc) return rc;
    if (index >= desc->ndims)
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclGetTensorDescDimV2: index %zu is out of range (the description has %zu dims)", index, desc->ndims);
    *dimSize = desc->dims[index];
    return ACL_SUCCESS;
}

EMU_API size_t aclGetTensorDescElementCount(const aclTensorDesc *desc)
{
    const aclTensorDesc *d = live(desc, "aclGetTensorDescElementCount");
    if (!d) return 0;
    size_t n = 1;
    for (size_t i = 0; i < d->ndims; i++) {
        if (d->dims[i] < 0) return 0;   /* unknown dimension */
        n *= (size_t)d->dims[i];
    }
    return n;
}

EMU_API size_t aclGetTensorDescSize(const aclTensorDesc *desc)
{
    const aclTensorDesc *d = live(desc, "aclGetTensorDescSize");
    return d ? aclGetTensorDescElementCount(d) * aclDataTypeSize(d->dtype) : 0;
}

EMU_API aclDataType aclGetTensorDescType(const aclTensorDesc *desc)
{
    const aclTensorDesc *d = live(desc, "aclGetTensorDescType");
    return d ? d->dtype : ACL_DT_UNDEFINED;
}

EMU_API aclFormat aclGetTensorDescFormat(const aclTensorDesc *desc)
{
    const aclTensorDesc *d = live(desc, "aclGetTensorDescFormat");
    return d ? d->format : ACL_FORMAT_UNDEFINED;
}

EMU_API aclError aclSetTensorShapeRange(aclTensorDesc *desc, size_t dimsCount, int64_t dimsRange[][2])
{
    EMU_ENTER("aclSetTensorShapeRange");
    aclError rc = emu_check_handle(desc, EMU_H_TENSORDESC, "aclSetTensorShapeRange");
    if (rc) return rc;
    if (dimsCount > ACL_MAX_DIM_CNT || (dimsCount && !dimsRange))
        return emu_fail(ACL_ERROR_INVALID_PARAM, "aclSetTensorShapeRange: dimsCount must be 0..%d with dimsRange set (got %zu)", ACL_MAX_DIM_CNT, dimsCount);
    for (size_t i = 0; i < dimsCount; i++)
        if (dimsRange[i][0] < 0 || (dimsRange[i][1] >= 0 && dimsRange[i][1] < dimsRange[i][0]))
            return emu_fail(ACL_ERROR_INVALID_PARAM, "aclSetTensorShapeRange: range %zu is [%lld, %lld] (min >= 0, max >= min or -1 for no limit)", i,
                            (long long)dimsRange[i][0], (long long)dimsRange[i][1]);
    desc->nranges = dimsCount;
    if (dimsCount) memcpy(desc->ranges, dimsRange, dimsCount * sizeof dimsRange[0]);
    return ACL_SUCCESS;
}
