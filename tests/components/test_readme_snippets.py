"""The README's component snippets, run as written under Pulumi's mocks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kexpose.preview import run_program

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "### Using the components from another Pulumi program"


def _snippets() -> list[str]:
    text = README.read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n### ", len(SECTION))]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def test_the_readme_has_both_snippets() -> None:
    found = _snippets()
    assert len(found) == 2
    assert "ExposedApp(" in found[0]
    assert "Exposure(" in found[1]


@pytest.mark.parametrize("index", [0, 1], ids=["ExposedApp", "Exposure"])
def test_snippet_runs_as_written(index: int) -> None:
    code = compile(_snippets()[index], f"README.md snippet {index}", "exec")
    recorded = run_program(lambda: exec(code, {}), stack="readme", config={})  # noqa: S102
    kinds = {r.type.rsplit(":", 1)[-1] for r in recorded if r.type.startswith("kubernetes:")}
    assert {"Deployment", "Service", "Ingress"} <= kinds
    names = {r.inputs.get("metadata", {}).get("name") for r in recorded if r.custom}
    assert "shop-web" in names
    if index == 1:
        assert "shop-api" in names
