# Dynamic AIPP parameter sets: an AippConfig (fastexec/aipp.py) as the runtime's aclmdlAIPP.
# Included by fastexec/_core.pyx.

from fastexec.aipp import INPUT_FORMATS as _AIPP_FORMATS


cdef class AippParams:
    """``AippParams(config, batch)``: the aclmdlAIPP of an AippConfig for `batch` images, built
    with aclmdlCreateAIPP and the aclmdlSetAIPP* setters (an AclError names the setter that
    refused a value). The executor makes these; close() destroys the set."""

    def __cinit__(self):
        self.handle = NULL

    def __init__(self, config, batch):
        from fastexec.aipp import AippConfig
        if not isinstance(config, AippConfig):
            raise TypeError(f"AippParams: config must be a fastexec.AippConfig, got {type(config).__name__}")
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 127:
            raise ValueError(f"AippParams: batch must be an int in 1..127, got {batch!r}")
        ensure_initialized()
        if not symbol_available(b"aclmdlCreateAIPP") or not symbol_available(b"aclmdlSetInputAIPP"):
            raise AclFunctionNotFoundError("aclmdlCreateAIPP", _library_info.get("library", "the ACL library"))
        entries = config.entries(batch)
        self.config = config
        self.batch = batch
        self.handle = aclmdlCreateAIPP(batch)
        if self.handle == NULL:
            raise AclError(100000, "aclmdlCreateAIPP", f"the runtime returned no parameter set for batch {batch}")
        try:
            self._fill(config, entries)
        except BaseException:
            self.close()
            raise

    cdef _fill(self, config, list entries):
        cdef aclmdlAIPP* a = self.handle
        cdef uint64_t b
        check(aclmdlSetAIPPInputFormat(a, <aclAippInputFormat>_AIPP_FORMATS[config.input_format]), "aclmdlSetAIPPInputFormat")
        w, h = config.src_image_size
        check(aclmdlSetAIPPSrcImageSize(a, w, h), "aclmdlSetAIPPSrcImageSize")
        if config.csc is not None:
            m, ob, ib = config.csc["matrix"], config.csc["output_bias"], config.csc["input_bias"]
            check(aclmdlSetAIPPCscParams(a, 1, m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8],
                                         ob[0], ob[1], ob[2], ib[0], ib[1], ib[2]), "aclmdlSetAIPPCscParams")
        check(aclmdlSetAIPPRbuvSwapSwitch(a, config.rbuv_swap_switch), "aclmdlSetAIPPRbuvSwapSwitch")
        check(aclmdlSetAIPPAxSwapSwitch(a, config.ax_swap_switch), "aclmdlSetAIPPAxSwapSwitch")
        for b, e in enumerate(entries):
            if e["crop"] is not None:
                x, y, cw, ch = e["crop"]
                check(aclmdlSetAIPPCropParams(a, 1, x, y, cw, ch, b), "aclmdlSetAIPPCropParams")
            if e["padding"] is not None:
                top, bottom, left, right = e["padding"]
                check(aclmdlSetAIPPPaddingParams(a, 1, top, bottom, left, right, b), "aclmdlSetAIPPPaddingParams")
            mean, mins, var = e["dtc_pixel_mean"], e["dtc_pixel_min"], e["pixel_var_reci"]
            check(aclmdlSetAIPPDtcPixelMean(a, mean[0], mean[1], mean[2], mean[3], b), "aclmdlSetAIPPDtcPixelMean")
            check(aclmdlSetAIPPDtcPixelMin(a, mins[0], mins[1], mins[2], mins[3], b), "aclmdlSetAIPPDtcPixelMin")
            check(aclmdlSetAIPPPixelVarReci(a, var[0], var[1], var[2], var[3], b), "aclmdlSetAIPPPixelVarReci")

    def close(self):
        """Destroy the parameter set (idempotent)."""
        if self.handle != NULL:
            aclmdlDestroyAIPP(self.handle)
            self.handle = NULL

    def __dealloc__(self):
        if self.handle != NULL and _can_free():
            aclmdlDestroyAIPP(self.handle)

    def __repr__(self):
        return f"AippParams({self.config!r}, batch={self.batch}{'' if self.handle != NULL else ', closed'})"
