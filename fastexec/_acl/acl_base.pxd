# Declarations of <acl/acl_base.h> (acl_base_rt.h + acl_base_mdl.h): scalar and handle types,
# data types, formats, data buffers. Declarations only; functions resolve through the loader's
# table (acl_api.h), so no ACL library is linked at build time.
from libc.stdint cimport int32_t, int64_t, uint16_t, uint32_t, uint64_t

cdef extern from "acl/acl.h" nogil:
    ctypedef int aclError
    ctypedef void* aclrtStream
    ctypedef void* aclrtEvent
    ctypedef void* aclrtContext
    ctypedef uint16_t aclFloat16
    ctypedef struct aclDataBuffer:
        pass
    ctypedef struct aclTensorDesc:
        pass

    ctypedef enum aclDataType:
        ACL_DT_UNDEFINED
        ACL_FLOAT
        ACL_FLOAT16
        ACL_INT8
        ACL_INT32
        ACL_UINT8
        ACL_INT16
        ACL_UINT16
        ACL_UINT32
        ACL_INT64
        ACL_UINT64
        ACL_DOUBLE
        ACL_BOOL
        ACL_STRING
        ACL_COMPLEX64
        ACL_COMPLEX128
        ACL_BF16

    ctypedef enum aclFormat:
        ACL_FORMAT_UNDEFINED
        ACL_FORMAT_NCHW
        ACL_FORMAT_NHWC
        ACL_FORMAT_ND
        ACL_FORMAT_NC1HWC0
        ACL_FORMAT_FRACTAL_Z
        ACL_FORMAT_NC1HWC0_C04
        ACL_FORMAT_HWCN
        ACL_FORMAT_NDHWC
        ACL_FORMAT_FRACTAL_NZ
        ACL_FORMAT_NCDHW
        ACL_FORMAT_NDC1HWC0
        ACL_FRACTAL_Z_3D
        ACL_FORMAT_NC
        ACL_FORMAT_NCL

    enum:
        ACL_SUCCESS
        ACL_ERROR_INVALID_PARAM
        ACL_ERROR_REPEAT_INITIALIZE

cdef extern from "acl_api.h" nogil:
    enum:
        FX_ACL_SYMBOL_MISSING
    const char* aclGetRecentErrMsg "fx_acl.aclGetRecentErrMsg"()
    aclTensorDesc* aclCreateTensorDesc "fx_acl.aclCreateTensorDesc"(aclDataType dataType, int numDims, const int64_t* dims, aclFormat format)
    void aclDestroyTensorDesc "fx_acl.aclDestroyTensorDesc"(const aclTensorDesc* desc)
    size_t aclGetTensorDescNumDims "fx_acl.aclGetTensorDescNumDims"(const aclTensorDesc* desc)
    aclError aclGetTensorDescDimV2 "fx_acl.aclGetTensorDescDimV2"(const aclTensorDesc* desc, size_t index, int64_t* dimSize)
    aclDataBuffer* aclCreateDataBuffer "fx_acl.aclCreateDataBuffer"(void* data, size_t size)
    aclError aclDestroyDataBuffer "fx_acl.aclDestroyDataBuffer"(const aclDataBuffer* dataBuffer)
    aclError aclUpdateDataBuffer "fx_acl.aclUpdateDataBuffer"(aclDataBuffer* dataBuffer, void* data, size_t size)
    void* aclGetDataBufferAddr "fx_acl.aclGetDataBufferAddr"(const aclDataBuffer* dataBuffer)
    size_t aclGetDataBufferSizeV2 "fx_acl.aclGetDataBufferSizeV2"(const aclDataBuffer* dataBuffer)
    size_t aclDataTypeSize "fx_acl.aclDataTypeSize"(aclDataType dataType)
    const char* aclrtGetSocName "fx_acl.aclrtGetSocName"()
