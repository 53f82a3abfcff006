"""fastexec: pipelined, GIL-free execution of Ascend offline models over AscendCL.

The ACL emulator bundled for machines without an NPU lives in :mod:`fastexec.emulator`.
"""

__version__ = "0.1.0"
