"""docs/failures.md shows, for every case of the failure corpus, the line the tests see: the
same cases, the same lines; and every case of the corpus is produced by some test."""

from __future__ import annotations

import re

import pytest
from conftest import PROJECT_ROOT
from failure_corpus import MESSAGES, assert_message, pattern

DOC = (PROJECT_ROOT / "docs" / "failures.md").read_text(encoding="utf-8")
TESTS = PROJECT_ROOT / "tests"
# A table row: | `case` | when | `error: ...` |
ROW = re.compile(r"^\| `([a-z0-9_]+)` \| .* \| `(error: .*)` \|$", re.MULTILINE)


def documented() -> dict[str, str]:
    rows = ROW.findall(DOC)
    assert len(rows) == len(dict(rows)), "a case is documented twice"
    return dict(rows)


def test_the_page_lists_every_case_of_the_corpus_and_no_other():
    assert sorted(documented()) == sorted(MESSAGES)


@pytest.mark.parametrize("case", sorted(MESSAGES))
def test_the_page_shows_the_line_the_tests_check(case):
    assert documented()[case] == MESSAGES[case]


@pytest.mark.parametrize("case", sorted(MESSAGES))
def test_every_case_is_produced_by_a_test(case):
    """Named where a test checks its line (a literal, or in a list of parametrized cases)."""
    users = [path for path in TESTS.rglob("test_*.py")
             if re.search(rf"[\"']{case}[\"']", path.read_text(encoding="utf-8"))
             and "assert_message" in path.read_text(encoding="utf-8")]
    assert users, f"no test produces {case!r}"


def test_placeholders_stand_for_any_text():
    assert_message("missing_file", "error: input not found: /tmp/x y/ñ.mp4")
    assert not pattern("missing_file").fullmatch("error: input not found:")
    assert not pattern("empty_input").fullmatch("error: input is empty")
