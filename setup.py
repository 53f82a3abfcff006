"""Build: the ACL emulator (a plain C shared library, no Python in it) and the Cython extensions."""
import glob
import os
import shutil

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))
EMULATOR = "fastexec.emulator.libascendcl_emu"
EMULATOR_SOURCES = sorted(glob.glob("fastexec/emulator/src/*.c"))

C_FLAGS = ["-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-fvisibility=hidden", "-pthread"]
if os.environ.get("FASTEXEC_SANITIZE"):
    C_FLAGS += ["-fsanitize=" + os.environ["FASTEXEC_SANITIZE"], "-fno-omit-frame-pointer"]


class BuildExt(build_ext):
    """Gives the emulator a plain library name (libascendcl_emu.so) instead of a module suffix."""

    def get_ext_filename(self, fullname):
        # Called with the dotted name or with its last component only, depending on the caller.
        if fullname.split(".")[-1] == EMULATOR.split(".")[-1]:
            return os.path.join(*fullname.split(".")[:-1], "libascendcl_emu.so")
        return super().get_ext_filename(fullname)

    def get_export_symbols(self, ext):
        return [] if ext.name == EMULATOR else super().get_export_symbols(ext)


class BuildPy(build_py):
    """Ships the project's headers inside the package (fastexec/include)."""

    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "fastexec", "include")
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(os.path.join(ROOT, "include"), target)


def extensions():
    exts = [
        Extension(
            EMULATOR,
            sources=EMULATOR_SOURCES,
            include_dirs=["include", "fastexec/emulator/src"],
            extra_compile_args=C_FLAGS,
            extra_link_args=["-pthread"] + [f for f in C_FLAGS if f.startswith("-fsanitize")],
            libraries=["m"],
        )
    ]
    import numpy
    from Cython.Build import cythonize

    core = Extension(
        "fastexec._core",
        sources=["fastexec/_core.pyx", "fastexec/_acl/acl_api.c"],
        include_dirs=["include", "fastexec/_acl", numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O2"],
        libraries=["dl"],
    )
    exts += cythonize([core], compiler_directives={"language_level": 3, "embedsignature": True})
    return exts


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt, "build_py": BuildPy})
