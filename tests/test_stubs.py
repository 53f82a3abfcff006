"""The type stubs (fastexec/_core.pyi) against the extension's real signatures: every public
class, method and property of fastexec._core is in the stubs and vice versa, with the same
parameter names, kinds and defaults."""
import ast
import inspect
import re
from pathlib import Path

import pytest

import fastexec
from fastexec import _core

PKG = Path(fastexec.__file__).parent
STUB = ast.parse((PKG / "_core.pyi").read_text())
SOURCES = "\n".join(p.read_text() for p in [PKG / "runtime.pxi", PKG / "aipp.pxi", PKG / "executor.pxi"])


def stub_classes():
    return {n.name: n for n in STUB.body if isinstance(n, ast.ClassDef)}


def stub_params(fn: ast.FunctionDef):
    a = fn.args
    out = []
    defaults = [None] * (len(a.args) - len(a.defaults)) + [ast.unparse(d) for d in a.defaults]
    for arg, d in zip(a.args, defaults):
        out.append((arg.arg, "POSITIONAL_OR_KEYWORD", d))
    if a.vararg:
        out.append((a.vararg.arg, "VAR_POSITIONAL", None))
    for arg, d in zip(a.kwonlyargs, a.kw_defaults):
        out.append((arg.arg, "KEYWORD_ONLY", ast.unparse(d) if d is not None else None))
    if a.kwarg:
        out.append((a.kwarg.arg, "VAR_KEYWORD", None))
    return out


def real_params(fn):
    out = []
    for p in inspect.signature(fn).parameters.values():
        d = None if p.default is inspect.Parameter.empty else repr(p.default)
        kind = p.kind.name
        if p.name == "self" and kind == "POSITIONAL_ONLY":      # a slot wrapper's self
            kind = "POSITIONAL_OR_KEYWORD"
        out.append((p.name, kind, d))
    return out


def source_init_params(cls_name):
    """__init__ of a cdef class, from its source (the slot wrapper hides it from inspect)."""
    m = re.search(r"^cdef class " + cls_name + r"\b.*?^    def __init__\(([^)]*)\)", SOURCES, re.S | re.M)
    text = "def f(" + re.sub(r"\bnot None\b", "", m.group(1)) + "): pass"
    # drop the C types: "int device_id=0" -> "device_id=0"
    text = re.sub(r"\b(?:int|str|bint|size_t|Device|Stream|Event|ExecConfig|Executor|Model)\s+(\w)", r"\1", text)
    return stub_params(ast.parse(text).body[0])


def public_members(cls):
    names = {k for k in vars(cls) if not k.startswith("_")}
    names |= {k for k in ("__init__", "__enter__", "__exit__", "__len__") if k in vars(cls)}
    return names


def test_stubs_name_every_public_class_and_function():
    stubbed = stub_classes()
    real = {n for n in dir(_core) if not n.startswith("_") and inspect.isclass(getattr(_core, n))
            and getattr(_core, n).__module__ == "fastexec._core"}
    assert real <= set(stubbed), real - set(stubbed)
    functions = {n.name for n in STUB.body if isinstance(n, ast.FunctionDef)}
    assert functions == {"acl_config", "backend_info", "init"}
    for name in set(fastexec._CORE_NAMES):
        assert name in stubbed or name in functions, name


@pytest.mark.parametrize("name", sorted(n for n in stub_classes() if n != "TensorSpec"))
def test_stub_class_matches_the_extension(name):
    cls = getattr(_core, name)
    node = stub_classes()[name]
    methods = {f.name: f for f in node.body if isinstance(f, ast.FunctionDef)
               and not any(ast.unparse(d) == "property" for d in f.decorator_list)}
    props = {f.name for f in node.body if isinstance(f, ast.FunctionDef)
             and any(ast.unparse(d) == "property" for d in f.decorator_list)}
    props |= {t.target.id for t in node.body if isinstance(t, ast.AnnAssign)}
    own = public_members(cls)
    inherited = {k for base in cls.__mro__[1:] if base.__module__ == "fastexec._core" for k in public_members(base)}
    assert own <= set(methods) | props | inherited, (own - set(methods) - props)
    for m, fn in methods.items():
        real = getattr(cls, m)
        if m == "__init__":
            assert stub_params(fn) == source_init_params(name), name
        elif m in vars(cls) or m not in inherited:
            assert stub_params(fn) == real_params(real), (name, m)
    for p in props:
        assert hasattr(cls, p) and not callable(inspect.getattr_static(cls, p)) or isinstance(
            inspect.getattr_static(cls, p), property), (name, p)


def test_stub_functions_match():
    fns = {n.name: n for n in STUB.body if isinstance(n, ast.FunctionDef)}
    assert stub_params(fns["backend_info"]) == real_params(_core.backend_info)


def test_tensor_spec_fields():
    node = stub_classes()["TensorSpec"]
    assert [t.target.id for t in node.body if isinstance(t, ast.AnnAssign)] == list(_core.TensorSpec._fields)


def test_package_stub_exports_what_the_package_does():
    tree = ast.parse((PKG / "__init__.pyi").read_text())
    names = {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    names |= {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert names == set(fastexec.__all__)
    assert {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign)} == {"__version__", "__all__"}
