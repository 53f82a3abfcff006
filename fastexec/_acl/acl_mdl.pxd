# Declarations of <acl/acl_mdl.h>: models, descriptions, datasets, execution, exec configs.
from libc.stdint cimport int64_t, uint32_t, uint64_t
from fastexec._acl.acl_base cimport aclError, aclrtStream, aclDataBuffer, aclDataType, aclFormat, aclTensorDesc

cdef extern from "acl/acl.h" nogil:
    ctypedef struct aclmdlDataset:
        pass
    ctypedef struct aclmdlDesc:
        pass
    ctypedef struct aclmdlExecConfigHandle:
        pass
    ctypedef struct aclmdlIODims:
        char name[128]
        size_t dimCount
        int64_t dims[128]
    ctypedef struct aclmdlBatch:
        size_t batchCount
        uint64_t batch[128]
    ctypedef struct aclmdlHW:
        size_t hwCount
        uint64_t hw[128][2]
    ctypedef struct aclmdlIODimsRange:
        size_t rangeCount
        int64_t range[128][2]
    ctypedef enum aclmdlExecConfigAttr:
        ACL_MDL_STREAM_SYNC_TIMEOUT
        ACL_MDL_EVENT_SYNC_TIMEOUT
        ACL_MDL_WORK_ADDR_PTR
        ACL_MDL_WORK_SIZET
        ACL_MDL_MPAIMID_SIZET
        ACL_MDL_AICQOS_SIZET
        ACL_MDL_AICOST_SIZET
        ACL_MDL_MEC_TIMETHR_SIZET
    const char* ACL_DYNAMIC_TENSOR_NAME

cdef extern from "acl_api.h" nogil:
    aclError aclmdlLoadFromFile "fx_acl.aclmdlLoadFromFile"(const char* modelPath, uint32_t* modelId)
    aclError aclmdlLoadFromMem "fx_acl.aclmdlLoadFromMem"(const void* model, size_t modelSize, uint32_t* modelId)
    aclError aclmdlQuerySize "fx_acl.aclmdlQuerySize"(const char* fileName, size_t* workSize, size_t* weightSize)
    aclError aclmdlUnload "fx_acl.aclmdlUnload"(uint32_t modelId)

    aclmdlDesc* aclmdlCreateDesc "fx_acl.aclmdlCreateDesc"()
    aclError aclmdlDestroyDesc "fx_acl.aclmdlDestroyDesc"(aclmdlDesc* modelDesc)
    aclError aclmdlGetDesc "fx_acl.aclmdlGetDesc"(aclmdlDesc* modelDesc, uint32_t modelId)
    size_t aclmdlGetNumInputs "fx_acl.aclmdlGetNumInputs"(aclmdlDesc* modelDesc)
    size_t aclmdlGetNumOutputs "fx_acl.aclmdlGetNumOutputs"(aclmdlDesc* modelDesc)
    size_t aclmdlGetInputSizeByIndex "fx_acl.aclmdlGetInputSizeByIndex"(aclmdlDesc* modelDesc, size_t index)
    size_t aclmdlGetOutputSizeByIndex "fx_acl.aclmdlGetOutputSizeByIndex"(aclmdlDesc* modelDesc, size_t index)
    aclError aclmdlGetInputDims "fx_acl.aclmdlGetInputDims"(const aclmdlDesc* modelDesc, size_t index, aclmdlIODims* dims)
    aclError aclmdlGetOutputDims "fx_acl.aclmdlGetOutputDims"(const aclmdlDesc* modelDesc, size_t index, aclmdlIODims* dims)
    const char* aclmdlGetInputNameByIndex "fx_acl.aclmdlGetInputNameByIndex"(const aclmdlDesc* modelDesc, size_t index)
    const char* aclmdlGetOutputNameByIndex "fx_acl.aclmdlGetOutputNameByIndex"(const aclmdlDesc* modelDesc, size_t index)
    aclDataType aclmdlGetInputDataType "fx_acl.aclmdlGetInputDataType"(const aclmdlDesc* modelDesc, size_t index)
    aclDataType aclmdlGetOutputDataType "fx_acl.aclmdlGetOutputDataType"(const aclmdlDesc* modelDesc, size_t index)
    aclFormat aclmdlGetInputFormat "fx_acl.aclmdlGetInputFormat"(const aclmdlDesc* modelDesc, size_t index)
    aclFormat aclmdlGetOutputFormat "fx_acl.aclmdlGetOutputFormat"(const aclmdlDesc* modelDesc, size_t index)
    aclError aclmdlGetInputIndexByName "fx_acl.aclmdlGetInputIndexByName"(const aclmdlDesc* modelDesc, const char* name, size_t* index)
    aclError aclmdlGetOutputIndexByName "fx_acl.aclmdlGetOutputIndexByName"(const aclmdlDesc* modelDesc, const char* name, size_t* index)
    aclError aclmdlGetDynamicBatch "fx_acl.aclmdlGetDynamicBatch"(const aclmdlDesc* modelDesc, aclmdlBatch* batch)
    aclError aclmdlSetDynamicBatchSize "fx_acl.aclmdlSetDynamicBatchSize"(uint32_t modelId, aclmdlDataset* dataset, size_t index, uint64_t batchSize)
    aclError aclmdlGetDynamicHW "fx_acl.aclmdlGetDynamicHW"(const aclmdlDesc* modelDesc, size_t index, aclmdlHW* hw)
    aclError aclmdlSetDynamicHWSize "fx_acl.aclmdlSetDynamicHWSize"(uint32_t modelId, aclmdlDataset* dataset, size_t index, uint64_t height, uint64_t width)
    aclError aclmdlGetInputDynamicGearCount "fx_acl.aclmdlGetInputDynamicGearCount"(const aclmdlDesc* modelDesc, size_t index, size_t* gearCount)
    aclError aclmdlGetInputDynamicDims "fx_acl.aclmdlGetInputDynamicDims"(const aclmdlDesc* modelDesc, size_t index, aclmdlIODims* dims, size_t gearCount)
    aclError aclmdlSetInputDynamicDims "fx_acl.aclmdlSetInputDynamicDims"(uint32_t modelId, aclmdlDataset* dataset, size_t index, const aclmdlIODims* dims)
    aclError aclmdlGetInputDimsRange "fx_acl.aclmdlGetInputDimsRange"(const aclmdlDesc* modelDesc, size_t index, aclmdlIODimsRange* dimsRange)
    aclError aclmdlGetCurOutputDims "fx_acl.aclmdlGetCurOutputDims"(const aclmdlDesc* modelDesc, size_t index, aclmdlIODims* dims)
    aclError aclmdlSetDatasetTensorDesc "fx_acl.aclmdlSetDatasetTensorDesc"(aclmdlDataset* dataset, aclTensorDesc* tensorDesc, size_t index)
    aclTensorDesc* aclmdlGetDatasetTensorDesc "fx_acl.aclmdlGetDatasetTensorDesc"(const aclmdlDataset* dataset, size_t index)

    aclmdlDataset* aclmdlCreateDataset "fx_acl.aclmdlCreateDataset"()
    aclError aclmdlDestroyDataset "fx_acl.aclmdlDestroyDataset"(const aclmdlDataset* dataset)
    aclError aclmdlAddDatasetBuffer "fx_acl.aclmdlAddDatasetBuffer"(aclmdlDataset* dataset, aclDataBuffer* dataBuffer)
    size_t aclmdlGetDatasetNumBuffers "fx_acl.aclmdlGetDatasetNumBuffers"(const aclmdlDataset* dataset)
    aclDataBuffer* aclmdlGetDatasetBuffer "fx_acl.aclmdlGetDatasetBuffer"(const aclmdlDataset* dataset, size_t index)

    aclError aclmdlExecute "fx_acl.aclmdlExecute"(uint32_t modelId, const aclmdlDataset* input, aclmdlDataset* output)
    aclError aclmdlExecuteAsync "fx_acl.aclmdlExecuteAsync"(uint32_t modelId, const aclmdlDataset* input, aclmdlDataset* output, aclrtStream stream)
    aclError aclmdlExecuteV2 "fx_acl.aclmdlExecuteV2"(uint32_t modelId, const aclmdlDataset* input, aclmdlDataset* output, aclrtStream stream, const aclmdlExecConfigHandle* handle)
    aclError aclmdlExecuteAsyncV2 "fx_acl.aclmdlExecuteAsyncV2"(uint32_t modelId, const aclmdlDataset* input, aclmdlDataset* output, aclrtStream stream, const aclmdlExecConfigHandle* handle)
    aclmdlExecConfigHandle* aclmdlCreateExecConfigHandle "fx_acl.aclmdlCreateExecConfigHandle"()
    aclError aclmdlSetExecConfigOpt "fx_acl.aclmdlSetExecConfigOpt"(aclmdlExecConfigHandle* handle, aclmdlExecConfigAttr attr, const void* attrValue, size_t valueSize)
    aclError aclmdlDestroyExecConfigHandle "fx_acl.aclmdlDestroyExecConfigHandle"(const aclmdlExecConfigHandle* handle)
