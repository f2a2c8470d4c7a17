"""scripts/mutate.py's bookkeeping (`make mutate`, docs/mutation.md), without running mutmut: which lines a mutant
changes, which mutants only change a log or error message, the equivalent-mutant table's matching, mutmut's exit
codes, and that every file issue 25 lists is mapped to test files that exist."""

from __future__ import annotations

import json

from helpers import REPO, load_tool

MUTATE = load_tool(REPO / "scripts" / "mutate.py", "mutate_script")

ORIG = '''def f(x, path):
    if x < 0:
        raise DatasetError(
            f"{path}: bad {x}; fix it"
        )
    logger.info("value %d of %s", x, path)
    y = x + 1
    raise ConfigError("short")
'''


def _classify(mutant: str) -> tuple[list[int], bool]:
    touched, _, _ = MUTATE.changed_lines(ORIG, mutant)
    return touched, MUTATE.is_message_mutant(ORIG, touched)


def test_message_mutants_are_told_from_code_mutants():
    assert _classify(ORIG.replace('f"{path}: bad {x}; fix it"', "None")) == ([4], True)
    assert _classify(ORIG.replace('"value %d of %s"', '"XXvalue %d of %sXX"')) == ([6], True)
    assert _classify(ORIG.replace('ConfigError("short")', "ConfigError(None)")) == ([8], True)
    assert _classify(ORIG.replace("x + 1", "x - 1")) == ([7], False)
    assert _classify(ORIG.replace("x < 0", "x <= 0")) == ([2], False)
    # a mutant touching a message and code at once is code
    both = ORIG.replace("x + 1", "x - 1").replace('"value %d of %s"', "None")
    assert _classify(both) == ([6, 7], False)


def test_changed_lines_and_the_equivalent_table():
    mutant = ORIG.replace("x + 1", "x - 1")
    touched, removed, added = MUTATE.changed_lines(ORIG, mutant)
    assert (touched, removed, added) == ([7], ["y = x + 1"], ["y = x - 1"])
    table = [{"file": "a.py", "function": "x_f", "before": ["y = x + 1"], "after": ["y = x - 1"], "reason": "r"}]
    assert MUTATE.equivalent_reason("a.py", "pkg.a.x_f__mutmut_3", removed, added, table) == "r"
    assert MUTATE.equivalent_reason("b.py", "pkg.b.x_f__mutmut_3", removed, added, table) is None
    assert MUTATE.equivalent_reason("a.py", "pkg.a.x_g__mutmut_3", removed, added, table) is None
    assert MUTATE.equivalent_reason("a.py", "pkg.a.x_f__mutmut_3", removed, ["y = x * 1"], table) is None


def test_exit_codes_and_the_file_map():
    assert [MUTATE.status_of(c) for c in (1, 0, 33, 36, -24, None, 77)] == [
        "killed",
        "survived",
        "no_tests",
        "timeout",
        "timeout",
        "not_checked",
        "suspicious",
    ]
    for source, (tests, _) in MUTATE.FILE_TESTS.items():
        assert (REPO / source).is_file(), source
        assert tests and all((REPO / t.partition("::")[0]).is_file() for t in tests), (source, tests)
        for t in tests:  # a test id names a test function of its file (a typo would select nothing)
            path, _, name = t.partition("::")
            assert not name or f"def {name}(" in (REPO / path).read_text(), t
    for entry in json.loads((REPO / "scripts" / "mutation_equivalent.json").read_text()):
        assert {"file", "function", "before", "after", "reason"} <= set(entry) and entry["reason"].strip()
        assert entry["file"] in MUTATE.FILE_TESTS
