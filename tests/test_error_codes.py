"""fastexec._acl.error_codes must match the project's ACL headers exactly."""

import importlib.util
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "include" / "acl"
HEADERS = (
    INCLUDE / "acl_base_rt.h",
    INCLUDE / "error_codes" / "rt_error_codes.h",
    INCLUDE / "error_codes" / "ge_error_codes.h",
)

# `#define NAME 123`, `static const int NAME = -1;`, `static const uint32_t NAME = 145000U;`
_DEFINE = re.compile(r"^\s*#\s*define\s+(ACL_\w+)\s+(-?\d+)[uU]?\b", re.M)
_CONST = re.compile(
    r"^\s*static\s+const\s+(?:int|int32_t|uint32_t)\s+(ACL_\w+)\s*=\s*(-?\d+)[uU]?\s*;", re.M)


def _load_module():
    # Load by path: the compiled package need not be built or installed for this.
    path = ROOT / "fastexec" / "_acl" / "error_codes.py"
    spec = importlib.util.spec_from_file_location("_fastexec_error_codes_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ec = _load_module()


def _header_codes():
    codes = {}
    for header in HEADERS:
        text = header.read_text(encoding="utf-8")
        found = _DEFINE.findall(text) + _CONST.findall(text)
        assert found, f"no codes parsed from {header}"
        for name, value in found:
            assert name not in codes, f"{name} declared twice in the headers"
            codes[name] = int(value)
    return codes


HEADER_CODES = _header_codes()


def _table_codes():
    codes = {name: value for value, name in ec.NAMES.items()}
    for name, value in ec.ALIASES.items():
        assert name not in codes, f"{name} is both a primary name and an alias"
        codes[name] = value
    return codes


def test_headers_parse_to_a_plausible_count():
    assert len(HEADER_CODES) >= 250


def test_every_header_code_is_in_table_with_same_value():
    table = _table_codes()
    missing = sorted(set(HEADER_CODES) - set(table))
    assert not missing, f"codes in headers but not in NAMES/ALIASES: {missing}"
    wrong = {n: (HEADER_CODES[n], table[n]) for n in HEADER_CODES if table[n] != HEADER_CODES[n]}
    assert not wrong, f"value differs (header, table): {wrong}"


def test_every_table_code_is_in_headers():
    extra = sorted(set(_table_codes()) - set(HEADER_CODES))
    assert not extra, f"codes in NAMES/ALIASES but not in the headers: {extra}"


def test_aliases_point_at_values_with_a_primary_name():
    for name, value in ec.ALIASES.items():
        assert value in ec.NAMES, name
        assert ec.NAMES[value] != name


def test_shared_values_are_all_aliased():
    by_value = {}
    for name, value in HEADER_CODES.items():
        by_value.setdefault(value, []).append(name)
    for value, names in by_value.items():
        assert ec.NAMES[value] in names
        for other in names:
            if other != ec.NAMES[value]:
                assert ec.ALIASES.get(other) == value, other


def test_every_code_has_a_description():
    assert set(ec.DESCRIPTIONS) == set(ec.NAMES)
    for code, text in ec.DESCRIPTIONS.items():
        assert isinstance(text, str) and text.strip(), code
        assert len(text) <= 80, code


@pytest.mark.parametrize("category", ["OUT_OF_MEMORY", "TIMEOUT", "INVALID_PARAM", "NOT_SUPPORTED"])
def test_category_holds_only_known_error_codes(category):
    codes = getattr(ec, category)
    assert codes, category
    unknown = sorted(c for c in codes if c not in ec.NAMES)
    assert not unknown, f"{category} has unknown codes {unknown}"
    assert 0 not in codes


def test_categories_are_disjoint():
    cats = [ec.OUT_OF_MEMORY, ec.TIMEOUT, ec.INVALID_PARAM, ec.NOT_SUPPORTED]
    for i, a in enumerate(cats):
        for b in cats[i + 1:]:
            assert not (set(a) & set(b))


def test_category_members():
    assert {200000, 207001, 207018, 245000} <= set(ec.OUT_OF_MEMORY)
    assert {507046, 507047, 507012, 107019, 107020, 207020, 507014, 507017,
            545601, 100036} <= set(ec.TIMEOUT)
    assert {100000, 107000, 145000} <= set(ec.INVALID_PARAM)
    assert {200001, 200006, 207000} <= set(ec.NOT_SUPPORTED)
    # every code whose name says TIMEOUT is classed as a timeout
    named_timeouts = {v for v, n in ec.NAMES.items() if "TIMEOUT" in n}
    assert named_timeouts <= set(ec.TIMEOUT)


@pytest.mark.parametrize("value,name", [
    (0, "ACL_SUCCESS"),
    (100000, "ACL_ERROR_INVALID_PARAM"),
    (100037, "ACL_ERROR_REPEAT_FINALIZE"),
    (145002, "ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID"),
    (145003, "ACL_ERROR_GE_EXEC_MODEL_ID_INVALID"),
    (500002, "ACL_ERROR_GE_FAILURE"),
    (107016, "ACL_ERROR_RT_INVALID_MEMORY_TYPE"),
    (107017, "ACL_ERROR_RT_INVALID_HANDLE"),
    (107037, "ACL_ERROR_RT_MODEL_RUNNING"),
    (207001, "ACL_ERROR_RT_MEMORY_ALLOCATION"),
    (207002, "ACL_ERROR_RT_MEMORY_FREE"),
    (507011, "ACL_ERROR_RT_MODEL_EXECUTE"),
    (507046, "ACL_ERROR_RT_STREAM_SYNC_TIMEOUT"),
    (507047, "ACL_ERROR_RT_EVENT_SYNC_TIMEOUT"),
    (507910, "ACL_ERROR_HOST_MEMORY_ALREADY_REGISTERED"),
    (545601, "ACL_ERROR_GE_MODEL_EXECUTE_TIMEOUT"),
])
def test_spot_values(value, name):
    assert ec.NAMES[value] == name
    assert HEADER_CODES[name] == value


def test_name_of():
    assert ec.name_of(507046) == "ACL_ERROR_RT_STREAM_SYNC_TIMEOUT"
    assert ec.name_of(0) == "ACL_SUCCESS"
    assert ec.name_of(123456) == "UNKNOWN_ACL_ERROR_123456"
    assert ec.name_of(-7) == "UNKNOWN_ACL_ERROR_-7"


def test_module_imports_only_stdlib():
    src = (ROOT / "fastexec" / "_acl" / "error_codes.py").read_text(encoding="utf-8")
    imports = re.findall(r"^\s*(?:import|from)\s+([\w.]+)", src, re.M)
    assert all(m.split(".")[0] in {"__future__", "typing"} for m in imports), imports
