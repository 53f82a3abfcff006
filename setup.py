"""Build: the ACL emulator (plain C shared libraries, no Python in them) and the Cython extensions.

The emulator installs under CANN's library names in a folder of its own,
fastexec/emulator/lib/: libascendcl.so (the runtime and model API) and libacl_dvpp.so (DVPP
memory; it needs libascendcl.so and finds it next to itself through its $ORIGIN rpath).
"""
import glob
import os
import shutil

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = os.path.dirname(os.path.abspath(__file__))
EMULATOR = "fastexec.emulator.lib.libascendcl"
DVPP = "fastexec.emulator.lib.libacl_dvpp"
PLAIN_LIBRARIES = {EMULATOR: "libascendcl.so", DVPP: "libacl_dvpp.so"}
EMULATOR_SOURCES = sorted(glob.glob("fastexec/emulator/src/*.c"))
DVPP_SOURCES = sorted(glob.glob("fastexec/emulator/src/dvpp/*.c"))

C_FLAGS = ["-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-fvisibility=hidden", "-pthread"]
SANITIZE = [f for f in C_FLAGS if f.startswith("-fsanitize")]
if os.environ.get("FASTEXEC_SANITIZE"):
    C_FLAGS += ["-fsanitize=" + os.environ["FASTEXEC_SANITIZE"], "-fno-omit-frame-pointer"]
    SANITIZE = ["-fsanitize=" + os.environ["FASTEXEC_SANITIZE"]]


class BuildExt(build_ext):
    """Gives the emulator libraries plain names (libascendcl.so, libacl_dvpp.so) instead of module
    suffixes, and links libacl_dvpp.so against the libascendcl.so built next to it."""

    def _plain(self, fullname):
        last = fullname.split(".")[-1]
        for dotted, filename in PLAIN_LIBRARIES.items():
            if last == dotted.split(".")[-1]:
                return dotted, filename
        return None, None

    def get_ext_filename(self, fullname):
        # Called with the dotted name or with its last component only, depending on the caller.
        dotted, filename = self._plain(fullname)
        if dotted:
            return os.path.join(*fullname.split(".")[:-1], filename)
        return super().get_ext_filename(fullname)

    def get_export_symbols(self, ext):
        return [] if ext.name in PLAIN_LIBRARIES else super().get_export_symbols(ext)

    def copy_extensions_to_source(self):
        # Editable installs copy the built libraries into the tree: lib/ may not exist there yet.
        build_py = self.get_finalized_command("build_py")
        for ext in self.extensions:
            if ext.name in PLAIN_LIBRARIES:
                package = ".".join(ext.name.split(".")[:-1])
                os.makedirs(build_py.get_package_dir(package), exist_ok=True)
        super().copy_extensions_to_source()

    def build_extension(self, ext):
        if ext.name == DVPP:
            ext.library_dirs = [os.path.dirname(self.get_ext_fullpath(EMULATOR))]
        super().build_extension(ext)


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
            extra_link_args=["-pthread"] + SANITIZE,
            libraries=["m"],
        ),
        Extension(
            DVPP,
            sources=DVPP_SOURCES,
            include_dirs=["include"],
            extra_compile_args=C_FLAGS,
            extra_link_args=["-pthread", "-Wl,-rpath,$ORIGIN"] + SANITIZE,
            libraries=["ascendcl"],
        ),
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
