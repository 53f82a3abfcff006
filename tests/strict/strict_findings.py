"""pytest plugin for the strict-mode run (tests/test_strict_suite.py): at the end of the session,
prints the emulator's use-after-free findings of this process, so the parent can assert there
were none (a test that checks findings itself already fails on one; this covers the rest)."""


def pytest_sessionfinish(session, exitstatus):
    from fastexec import emulator

    c = emulator.counters()
    print(f"\nstrict-mode emulator: strict={emulator.profile()['strict']} "
          f"use_after_free_findings={c['findings_by_kind'][6]} findings={c['findings']}")
