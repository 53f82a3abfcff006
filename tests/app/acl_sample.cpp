/*
 * A third-party AscendCL application, written the way Ascend's own samples are: a resource
 * manager that owns device, context and stream, a model-process class that loads a model with
 * user memory (aclmdlQuerySize + aclmdlLoadFromFileWithMem) or from file, builds its datasets
 * and executes it, a callback for device exceptions, DVPP memory. It only includes
 * <acl/acl.h> and <acl/ops/acl_dvpp.h> and links with -lascendcl -lacl_dvpp: nothing in it
 * knows about the emulator.
 *
 * usage: acl_sample ACL_JSON STATIC_MODEL DYNAMIC_MODEL WORKDIR
 *   reads WORKDIR/static_in0.bin and WORKDIR/dynamic_in0.bin, writes WORKDIR/<name>_out<i>.bin
 *   and prints "key=value" lines for every result; exit status 0 only if every call behaved.
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "acl/acl.h"
#include "acl/ops/acl_dvpp.h"

#define INFO_LOG(fmt, ...) fprintf(stdout, fmt "\n", ##__VA_ARGS__)
#define ERROR_LOG(fmt, ...) fprintf(stderr, "[ERROR] " fmt "\n", ##__VA_ARGS__)

namespace {

int g_failures = 0;

bool Check(aclError ret, const char *what)
{
    if (ret != ACL_SUCCESS) {
        const char *msg = aclGetRecentErrMsg();
        ERROR_LOG("%s failed, errorCode = %d (%s)", what, static_cast<int>(ret), msg ? msg : "");
        g_failures++;
        return false;
    }
    return true;
}

void Expect(bool ok, const char *what)
{
    if (!ok) {
        ERROR_LOG("unexpected: %s", what);
        g_failures++;
    }
}

bool ReadFile(const std::string &path, std::vector<char> &data)
{
    FILE *f = fopen(path.c_str(), "rb");
    if (f == nullptr) return false;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data.resize(static_cast<size_t>(n));
    size_t got = fread(data.data(), 1, data.size(), f);
    fclose(f);
    return got == data.size();
}

bool WriteFile(const std::string &path, const void *data, size_t size)
{
    FILE *f = fopen(path.c_str(), "wb");
    if (f == nullptr) return false;
    size_t put = fwrite(data, 1, size, f);
    fclose(f);
    return put == size;
}

std::string DimsText(const aclmdlIODims &dims)
{
    std::string s;
    for (size_t i = 0; i < dims.dimCount; i++) {
        if (i) s += ",";
        s += std::to_string(dims.dims[i]);
    }
    return s;
}

/* ---------------------------------------------------------------- device exceptions */

struct ExceptionRecord {
    int calls = 0;
    uint32_t deviceId = 0, streamId = 0, taskId = 0;
    char opName[256] = {0};
    size_t numInputs = 0, numOutputs = 0;
    std::string inputDims;
};
ExceptionRecord g_exception;

void ExceptionCallback(aclrtExceptionInfo *info)
{
    g_exception.calls++;
    g_exception.deviceId = aclrtGetDeviceIdFromExceptionInfo(info);
    g_exception.streamId = aclrtGetStreamIdFromExceptionInfo(info);
    g_exception.taskId = aclrtGetTaskIdFromExceptionInfo(info);
    aclTensorDesc *inputDesc = nullptr, *outputDesc = nullptr;
    aclError ret = aclmdlCreateAndGetOpDesc(g_exception.deviceId, g_exception.streamId, g_exception.taskId, g_exception.opName,
                                            sizeof(g_exception.opName), &inputDesc, &g_exception.numInputs, &outputDesc,
                                            &g_exception.numOutputs);
    if (ret != ACL_SUCCESS) {
        ERROR_LOG("aclmdlCreateAndGetOpDesc failed, errorCode = %d", static_cast<int>(ret));
        return;
    }
    if (g_exception.numInputs > 0) {
        aclTensorDesc *first = aclGetTensorDescByIndex(inputDesc, 0);
        for (size_t i = 0; i < aclGetTensorDescNumDims(first); i++) {
            int64_t d = 0;
            (void)aclGetTensorDescDimV2(first, i, &d);
            if (i) g_exception.inputDims += ",";
            g_exception.inputDims += std::to_string(d);
        }
    }
    aclDestroyTensorDesc(inputDesc);
    aclDestroyTensorDesc(outputDesc);
}

/* ---------------------------------------------------------------- the model */

class ModelProcess {
public:
    ~ModelProcess() { Unload(); }

    bool LoadWithMem(const char *path)
    {
        if (!Check(aclmdlQuerySize(path, &workSize_, &weightSize_), "aclmdlQuerySize")) return false;
        INFO_LOG("query_size=%zu,%zu", workSize_, weightSize_);
        if (!Check(aclrtMalloc(&workPtr_, workSize_, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc work")) return false;
        if (!Check(aclrtMalloc(&weightPtr_, weightSize_, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc weight")) return false;
        if (!Check(aclmdlLoadFromFileWithMem(path, &modelId_, workPtr_, workSize_, weightPtr_, weightSize_), "aclmdlLoadFromFileWithMem"))
            return false;
        loaded_ = true;
        return CreateDesc();
    }

    bool LoadFromFile(const char *path)
    {
        if (!Check(aclmdlLoadFromFile(path, &modelId_), "aclmdlLoadFromFile")) return false;
        loaded_ = true;
        return CreateDesc();
    }

    void PrintDesc(const char *tag)
    {
        size_t nIn = aclmdlGetNumInputs(desc_), nOut = aclmdlGetNumOutputs(desc_);
        INFO_LOG("%s.inputs=%zu", tag, nIn);
        INFO_LOG("%s.outputs=%zu", tag, nOut);
        for (size_t i = 0; i < nIn; i++) {
            aclmdlIODims dims;
            Check(aclmdlGetInputDims(desc_, i, &dims), "aclmdlGetInputDims");
            INFO_LOG("%s.input%zu=%s:%s:%d:%d:%zu", tag, i, aclmdlGetInputNameByIndex(desc_, i), DimsText(dims).c_str(),
                     static_cast<int>(aclmdlGetInputDataType(desc_, i)), static_cast<int>(aclmdlGetInputFormat(desc_, i)),
                     aclmdlGetInputSizeByIndex(desc_, i));
            aclmdlInputAippType aippType;
            size_t attached = 0;
            Check(aclmdlGetAippType(modelId_, i, &aippType, &attached), "aclmdlGetAippType");
            INFO_LOG("%s.aipp%zu=%d", tag, i, static_cast<int>(aippType));
        }
        for (size_t i = 0; i < nOut; i++) {
            aclmdlIODims dims, cur;
            Check(aclmdlGetOutputDims(desc_, i, &dims), "aclmdlGetOutputDims");
            Check(aclmdlGetCurOutputDims(desc_, i, &cur), "aclmdlGetCurOutputDims");
            INFO_LOG("%s.output%zu=%s:%s:%d:%d:%zu", tag, i, aclmdlGetOutputNameByIndex(desc_, i), DimsText(dims).c_str(),
                     static_cast<int>(aclmdlGetOutputDataType(desc_, i)), static_cast<int>(aclmdlGetOutputFormat(desc_, i)),
                     aclmdlGetOutputSizeByIndex(desc_, i));
            INFO_LOG("%s.cur_output%zu=%s", tag, i, DimsText(cur).c_str());
        }
        aclmdlBatch batch;
        Check(aclmdlGetDynamicBatch(desc_, &batch), "aclmdlGetDynamicBatch");
        std::string gears;
        for (size_t i = 0; i < batch.batchCount; i++) gears += (i ? "," : "") + std::to_string(batch.batch[i]);
        INFO_LOG("%s.batch_gears=%s", tag, gears.c_str());
        size_t gearCount = 99;
        Check(aclmdlGetInputDynamicGearCount(desc_, -1, &gearCount), "aclmdlGetInputDynamicGearCount");
        INFO_LOG("%s.dims_gears=%zu", tag, gearCount);
        aclmdlHW hw;
        hw.hwCount = 99;
        Check(aclmdlGetDynamicHW(desc_, -1, &hw), "aclmdlGetDynamicHW");
        INFO_LOG("%s.hw_count=%zu", tag, hw.hwCount);
    }

    /* sampleModel.cpp style: device buffers of the model's sizes, zeroed, the data copied in. */
    bool CreateInput(const std::vector<char> &data)
    {
        input_ = aclmdlCreateDataset();
        size_t nIn = aclmdlGetNumInputs(desc_);
        for (size_t i = 0; i < nIn; i++) {
            size_t size = aclmdlGetInputSizeByIndex(desc_, i);
            void *buf = nullptr;
            if (!Check(aclrtMalloc(&buf, size, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc input")) return false;
            if (!Check(aclrtMemset(buf, size, 0, size), "aclrtMemset")) return false;
            if (i == 0 && !Check(aclrtMemcpy(buf, size, data.data(), data.size(), ACL_MEMCPY_HOST_TO_DEVICE), "aclrtMemcpy input")) return false;
            inBufs_.push_back(buf);
            aclDataBuffer *db = aclCreateDataBuffer(buf, size);
            if (!Check(aclmdlAddDatasetBuffer(input_, db), "aclmdlAddDatasetBuffer input")) return false;
        }
        return true;
    }

    bool CreateOutput()
    {
        output_ = aclmdlCreateDataset();
        for (size_t i = 0; i < aclmdlGetNumOutputs(desc_); i++) {
            size_t size = aclmdlGetOutputSizeByIndex(desc_, i);
            void *buf = nullptr;
            if (!Check(aclrtMalloc(&buf, size, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc output")) return false;
            outBufs_.push_back(buf);
            aclDataBuffer *db = aclCreateDataBuffer(buf, size);
            if (!Check(aclmdlAddDatasetBuffer(output_, db), "aclmdlAddDatasetBuffer output")) return false;
        }
        return true;
    }

    bool Execute() { return Check(aclmdlExecute(modelId_, input_, output_), "aclmdlExecute"); }

    aclError ExecuteAsync(aclrtStream stream) { return aclmdlExecuteAsync(modelId_, input_, output_, stream); }

    bool SetBatch(uint64_t batch)
    {
        size_t index = 0;
        if (!Check(aclmdlGetInputIndexByName(desc_, ACL_DYNAMIC_TENSOR_NAME, &index), "aclmdlGetInputIndexByName")) return false;
        return Check(aclmdlSetDynamicBatchSize(modelId_, input_, index, batch), "aclmdlSetDynamicBatchSize");
    }

    /* Output i to a pinned host buffer (synchronously, or on `stream`) and then to a file. */
    bool DumpOutput(size_t i, size_t bytes, const std::string &path, aclrtStream stream)
    {
        void *host = nullptr;
        if (!Check(aclrtMallocHost(&host, bytes), "aclrtMallocHost")) return false;
        bool ok;
        if (stream == nullptr) {
            ok = Check(aclrtMemcpy(host, bytes, outBufs_[i], bytes, ACL_MEMCPY_DEVICE_TO_HOST), "aclrtMemcpy output");
        } else {
            ok = Check(aclrtMemcpyAsync(host, bytes, outBufs_[i], bytes, ACL_MEMCPY_DEVICE_TO_HOST, stream), "aclrtMemcpyAsync output") &&
                 Check(aclrtSynchronizeStream(stream), "aclrtSynchronizeStream");
        }
        ok = ok && WriteFile(path, host, bytes);
        Check(aclrtFreeHost(host), "aclrtFreeHost");
        return ok;
    }

    aclmdlDesc *Desc() { return desc_; }
    aclmdlDataset *Input() { return input_; }
    aclmdlDataset *Output() { return output_; }

    void Unload()
    {
        DestroyDataset(input_, inBufs_);
        DestroyDataset(output_, outBufs_);
        if (desc_ != nullptr) Check(aclmdlDestroyDesc(desc_), "aclmdlDestroyDesc");
        desc_ = nullptr;
        if (loaded_) Check(aclmdlUnload(modelId_), "aclmdlUnload");
        loaded_ = false;
        if (workPtr_ != nullptr) Check(aclrtFree(workPtr_), "aclrtFree work");
        if (weightPtr_ != nullptr) Check(aclrtFree(weightPtr_), "aclrtFree weight");
        workPtr_ = weightPtr_ = nullptr;
    }

private:
    bool CreateDesc()
    {
        desc_ = aclmdlCreateDesc();
        return Check(aclmdlGetDesc(desc_, modelId_), "aclmdlGetDesc");
    }

    static void DestroyDataset(aclmdlDataset *&ds, std::vector<void *> &bufs)
    {
        if (ds == nullptr) return;
        for (size_t i = 0; i < aclmdlGetDatasetNumBuffers(ds); i++) {
            aclDataBuffer *db = aclmdlGetDatasetBuffer(ds, i);
            Check(aclDestroyDataBuffer(db), "aclDestroyDataBuffer");
        }
        for (void *b : bufs) Check(aclrtFree(b), "aclrtFree buffer");
        bufs.clear();
        Check(aclmdlDestroyDataset(ds), "aclmdlDestroyDataset");
        ds = nullptr;
    }

    uint32_t modelId_ = 0;
    bool loaded_ = false;
    aclmdlDesc *desc_ = nullptr;
    aclmdlDataset *input_ = nullptr, *output_ = nullptr;
    std::vector<void *> inBufs_, outBufs_;
    size_t workSize_ = 0, weightSize_ = 0;
    void *workPtr_ = nullptr, *weightPtr_ = nullptr;
};

}  // namespace

int main(int argc, char **argv)
{
    if (argc != 5) {
        ERROR_LOG("usage: %s ACL_JSON STATIC_MODEL DYNAMIC_MODEL WORKDIR", argv[0]);
        return 2;
    }
    std::string work = argv[4];

    /* ---- resources */
    if (!Check(aclInit(argv[1]), "aclInit")) return 1;
    if (!Check(aclrtSetExceptionInfoCallback(ExceptionCallback), "aclrtSetExceptionInfoCallback")) return 1;
    uint32_t deviceCount = 0;
    Check(aclrtGetDeviceCount(&deviceCount), "aclrtGetDeviceCount");
    INFO_LOG("device_count=%u", deviceCount);
    int32_t deviceId = 0;
    if (!Check(aclrtSetDevice(deviceId), "aclrtSetDevice")) return 1;
    aclrtContext context = nullptr;
    if (!Check(aclrtCreateContext(&context, deviceId), "aclrtCreateContext")) return 1;
    aclrtStream stream = nullptr;
    if (!Check(aclrtCreateStream(&stream), "aclrtCreateStream")) return 1;
    aclrtRunMode runMode;
    Check(aclrtGetRunMode(&runMode), "aclrtGetRunMode");
    INFO_LOG("run_mode=%d", static_cast<int>(runMode));
    const char *soc = aclrtGetSocName();
    INFO_LOG("soc=%s", soc ? soc : "");

    {
        /* ---- a static model with user memory, executed synchronously */
        ModelProcess model;
        std::vector<char> in;
        Expect(ReadFile(work + "/static_in0.bin", in), "read static_in0.bin");
        if (model.LoadWithMem(argv[2])) {
            model.PrintDesc("static");
            model.CreateInput(in);
            model.CreateOutput();
            if (model.Execute()) {
                size_t bytes = aclmdlGetOutputSizeByIndex(model.Desc(), 0);
                Expect(model.DumpOutput(0, bytes, work + "/static_out0.bin", nullptr), "static output written");
            }
            /* tensor descriptions: the output's real shape after the execution, and one set on the input */
            aclTensorDesc *outDesc = aclmdlGetDatasetTensorDesc(model.Output(), 0);
            std::string shape;
            for (size_t i = 0; outDesc != nullptr && i < aclGetTensorDescNumDims(outDesc); i++) {
                int64_t d = 0;
                Check(aclGetTensorDescDimV2(outDesc, i, &d), "aclGetTensorDescDimV2");
                shape += (i ? "," : "") + std::to_string(d);
            }
            INFO_LOG("static.output_desc=%s:%d:%zu", shape.c_str(), outDesc ? static_cast<int>(aclGetTensorDescType(outDesc)) : -1,
                     outDesc ? aclGetTensorDescSize(outDesc) : 0);
            aclmdlIODims inDims;
            Check(aclmdlGetInputDims(model.Desc(), 0, &inDims), "aclmdlGetInputDims");
            aclTensorDesc *inDesc = aclCreateTensorDesc(aclmdlGetInputDataType(model.Desc(), 0), static_cast<int>(inDims.dimCount),
                                                        inDims.dims, aclmdlGetInputFormat(model.Desc(), 0));
            Check(aclmdlSetDatasetTensorDesc(model.Input(), inDesc, 0), "aclmdlSetDatasetTensorDesc");
            aclTensorDesc *back = aclmdlGetDatasetTensorDesc(model.Input(), 0);
            INFO_LOG("static.input_desc=%zu:%zu:%zu", aclGetTensorDescNumDims(back), aclGetTensorDescElementCount(back),
                     aclGetTensorDescSize(back));
            aclDestroyTensorDesc(inDesc);
        }
    }

    {
        /* ---- a dynamic-batch model, executed asynchronously on the stream */
        ModelProcess model;
        std::vector<char> in;
        Expect(ReadFile(work + "/dynamic_in0.bin", in), "read dynamic_in0.bin");
        if (model.LoadFromFile(argv[3])) {
            model.PrintDesc("dynamic");
            model.CreateInput(in);
            model.CreateOutput();
            model.SetBatch(2);
            aclmdlIODims cur;
            Check(aclmdlGetCurOutputDims(model.Desc(), 0, &cur), "aclmdlGetCurOutputDims");
            INFO_LOG("dynamic.cur_output0_after_set=%s", DimsText(cur).c_str());
            if (Check(model.ExecuteAsync(stream), "aclmdlExecuteAsync")) {
                aclmdlIODims outDims;
                Check(aclmdlGetCurOutputDims(model.Desc(), 0, &outDims), "aclmdlGetCurOutputDims");
                size_t bytes = aclmdlGetOutputSizeByIndex(model.Desc(), 0) / 8 * 2;   /* batch 2 of 8 */
                Expect(model.DumpOutput(0, bytes, work + "/dynamic_out0.bin", stream), "dynamic output written");
            }
            /* the same execution again: the environment may inject a device fault into it */
            aclError ret = model.ExecuteAsync(stream);
            Check(ret, "aclmdlExecuteAsync (second)");
            aclError syncRet = aclrtSynchronizeStream(stream);
            INFO_LOG("second_sync=%d", static_cast<int>(syncRet));
            /* the callback has run before the synchronisation returned */
            INFO_LOG("exception.calls=%d", g_exception.calls);
            if (g_exception.calls) {
                INFO_LOG("exception.device=%u", g_exception.deviceId);
                INFO_LOG("exception.op=%s", g_exception.opName);
                INFO_LOG("exception.op_io=%zu,%zu", g_exception.numInputs, g_exception.numOutputs);
                INFO_LOG("exception.input_dims=%s", g_exception.inputDims.c_str());
            }
        }
    }

    /* ---- DVPP memory: 128-byte aligned device memory, usable by copies */
    {
        void *dvpp = nullptr;
        const size_t size = 1000;
        if (Check(acldvppMalloc(&dvpp, size), "acldvppMalloc")) {
            INFO_LOG("dvpp.aligned=%d", static_cast<int>(reinterpret_cast<uintptr_t>(dvpp) % 128 == 0));
            std::vector<unsigned char> src(size), dst(size, 0);
            for (size_t i = 0; i < size; i++) src[i] = static_cast<unsigned char>(i * 7);
            Check(aclrtMemcpy(dvpp, size, src.data(), size, ACL_MEMCPY_HOST_TO_DEVICE), "aclrtMemcpy to dvpp");
            Check(aclrtMemset(dvpp, size, 0x11, 10), "aclrtMemset dvpp");
            Check(aclrtMemcpy(dst.data(), size, dvpp, size, ACL_MEMCPY_DEVICE_TO_HOST), "aclrtMemcpy from dvpp");
            bool same = dst[0] == 0x11 && dst[9] == 0x11 && memcmp(src.data() + 10, dst.data() + 10, size - 10) == 0;
            INFO_LOG("dvpp.roundtrip=%d", static_cast<int>(same));
            Check(acldvppFree(dvpp), "acldvppFree");
        }
    }

    /* ---- teardown, in the samples' order */
    Check(aclrtDestroyStream(stream), "aclrtDestroyStream");
    Check(aclrtDestroyContext(context), "aclrtDestroyContext");
    Check(aclrtResetDevice(deviceId), "aclrtResetDevice");
    Check(aclFinalize(), "aclFinalize");
    INFO_LOG("failures=%d", g_failures);
    return g_failures == 0 ? 0 : 1;
}
