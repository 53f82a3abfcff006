# Declarations of <acl/acl_mdl.h>: models, descriptions, datasets, execution, exec configs.
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t
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
    const char* ACL_DYNAMIC_AIPP_NAME
    ctypedef struct aclmdlAIPP:
        pass
    ctypedef enum aclmdlInputAippType:
        ACL_DATA_WITHOUT_AIPP
        ACL_DATA_WITH_STATIC_AIPP
        ACL_DATA_WITH_DYNAMIC_AIPP
        ACL_DYNAMIC_AIPP_NODE
    ctypedef enum aclAippInputFormat:
        ACL_YUV420SP_U8
    ctypedef struct aclAippDims:
        aclmdlIODims srcDims
        size_t srcSize
        aclmdlIODims aippOutdims
        size_t aippOutSize
    ctypedef struct aclAippInfo:
        aclAippInputFormat inputFormat
        int32_t srcImageSizeW, srcImageSizeH
        int8_t cropSwitch
        int32_t loadStartPosW, loadStartPosH, cropSizeW, cropSizeH
        int8_t paddingSwitch
        int32_t leftPaddingSize, rightPaddingSize, topPaddingSize, bottomPaddingSize
        int8_t cscSwitch, rbuvSwapSwitch, axSwapSwitch
        int32_t matrixR0C0, matrixR0C1, matrixR0C2, matrixR1C0, matrixR1C1, matrixR1C2, matrixR2C0, matrixR2C1, matrixR2C2
        int32_t outputBias0, outputBias1, outputBias2, inputBias0, inputBias1, inputBias2
        int32_t meanChn0, meanChn1, meanChn2, meanChn3
        float minChn0, minChn1, minChn2, minChn3
        float varReciChn0, varReciChn1, varReciChn2, varReciChn3
        aclFormat srcFormat
        aclDataType srcDatatype
        size_t srcDimNum
        size_t shapeCount
        aclAippDims outDims[128]

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
    aclError aclmdlInitDump "fx_acl.aclmdlInitDump"()
    aclError aclmdlSetDump "fx_acl.aclmdlSetDump"(const char* dumpCfgPath)
    aclError aclmdlFinalizeDump "fx_acl.aclmdlFinalizeDump"()
    aclError aclmdlExecuteAsyncV2 "fx_acl.aclmdlExecuteAsyncV2"(uint32_t modelId, const aclmdlDataset* input, aclmdlDataset* output, aclrtStream stream, const aclmdlExecConfigHandle* handle)
    aclmdlExecConfigHandle* aclmdlCreateExecConfigHandle "fx_acl.aclmdlCreateExecConfigHandle"()
    aclError aclmdlSetExecConfigOpt "fx_acl.aclmdlSetExecConfigOpt"(aclmdlExecConfigHandle* handle, aclmdlExecConfigAttr attr, const void* attrValue, size_t valueSize)
    aclError aclmdlDestroyExecConfigHandle "fx_acl.aclmdlDestroyExecConfigHandle"(const aclmdlExecConfigHandle* handle)

    # AIPP (optional symbols)
    aclError aclmdlGetInputDimsV2 "fx_acl.aclmdlGetInputDimsV2"(const aclmdlDesc* modelDesc, size_t index, aclmdlIODims* dims)
    aclError aclmdlGetAippType "fx_acl.aclmdlGetAippType"(uint32_t modelId, size_t index, aclmdlInputAippType* type, size_t* dynamicAttachedDataIndex)
    aclError aclmdlGetFirstAippInfo "fx_acl.aclmdlGetFirstAippInfo"(uint32_t modelId, size_t index, aclAippInfo* aippInfo)
    aclmdlAIPP* aclmdlCreateAIPP "fx_acl.aclmdlCreateAIPP"(uint64_t batchSize)
    aclError aclmdlDestroyAIPP "fx_acl.aclmdlDestroyAIPP"(const aclmdlAIPP* aippParmsSet)
    aclError aclmdlGetAippDataSize "fx_acl.aclmdlGetAippDataSize"(uint64_t batchSize, size_t* size)
    aclError aclmdlSetAIPPInputFormat "fx_acl.aclmdlSetAIPPInputFormat"(aclmdlAIPP* aippParmsSet, aclAippInputFormat inputFormat)
    aclError aclmdlSetAIPPCscParams "fx_acl.aclmdlSetAIPPCscParams"(aclmdlAIPP* aippParmsSet, int8_t cscSwitch, int16_t m00, int16_t m01, int16_t m02, int16_t m10, int16_t m11, int16_t m12, int16_t m20, int16_t m21, int16_t m22, uint8_t ob0, uint8_t ob1, uint8_t ob2, uint8_t ib0, uint8_t ib1, uint8_t ib2)
    aclError aclmdlSetAIPPRbuvSwapSwitch "fx_acl.aclmdlSetAIPPRbuvSwapSwitch"(aclmdlAIPP* aippParmsSet, int8_t rbuvSwapSwitch)
    aclError aclmdlSetAIPPAxSwapSwitch "fx_acl.aclmdlSetAIPPAxSwapSwitch"(aclmdlAIPP* aippParmsSet, int8_t axSwapSwitch)
    aclError aclmdlSetAIPPSrcImageSize "fx_acl.aclmdlSetAIPPSrcImageSize"(aclmdlAIPP* aippParmsSet, int32_t srcImageSizeW, int32_t srcImageSizeH)
    aclError aclmdlSetAIPPCropParams "fx_acl.aclmdlSetAIPPCropParams"(aclmdlAIPP* aippParmsSet, int8_t cropSwitch, int32_t cropStartPosW, int32_t cropStartPosH, int32_t cropSizeW, int32_t cropSizeH, uint64_t batchIndex)
    aclError aclmdlSetAIPPPaddingParams "fx_acl.aclmdlSetAIPPPaddingParams"(aclmdlAIPP* aippParmsSet, int8_t paddingSwitch, int32_t top, int32_t bottom, int32_t left, int32_t right, uint64_t batchIndex)
    aclError aclmdlSetAIPPDtcPixelMean "fx_acl.aclmdlSetAIPPDtcPixelMean"(aclmdlAIPP* aippParmsSet, int16_t c0, int16_t c1, int16_t c2, int16_t c3, uint64_t batchIndex)
    aclError aclmdlSetAIPPDtcPixelMin "fx_acl.aclmdlSetAIPPDtcPixelMin"(aclmdlAIPP* aippParmsSet, float c0, float c1, float c2, float c3, uint64_t batchIndex)
    aclError aclmdlSetAIPPPixelVarReci "fx_acl.aclmdlSetAIPPPixelVarReci"(aclmdlAIPP* aippParmsSet, float c0, float c1, float c2, float c3, uint64_t batchIndex)
    aclError aclmdlSetInputAIPP "fx_acl.aclmdlSetInputAIPP"(uint32_t modelId, aclmdlDataset* dataset, size_t index, const aclmdlAIPP* aippParmsSet)
