"""docs/security-cases.md is the adversarial catalogue: every case id has a test named by it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "docs" / "security-cases.md"
SHARED = ROOT.parent / "shared" / "security-cases.md"


def case_ids() -> list[str]:
    return re.findall(r"^\| ([A-Z]{2}\d{2}) \|", CATALOGUE.read_text(), flags=re.MULTILINE)


def named_tests() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests" / "security").glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.add(node.name)
    return names


def test_every_case_id_has_a_test_named_by_it() -> None:
    ids = case_ids()
    assert len(ids) == 98  # 86 catalogue cases + 12 HX cases from the review
    assert len(set(ids)) == len(ids)
    names = named_tests()
    missing = [i for i in ids if not any(n.startswith(f"test_{i}_") for n in names)]
    assert missing == [], f"cases without a test: {missing}"


def test_the_copy_matches_the_shared_catalogue() -> None:
    if not SHARED.exists():  # only the team's checkout has shared/ beside it
        return
    assert CATALOGUE.read_text() == SHARED.read_text(), "docs/security-cases.md is out of sync"
