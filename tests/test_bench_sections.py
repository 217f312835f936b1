"""BENCHMARKS.md is written section by section by the scripts in benchmarks/:
rewriting one section must leave every other byte of the file as it was."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from harness import publish, write_section  # noqa: E402  (benchmarks/ is not a package)


def section(name: str, body: str) -> str:
    return f"<!-- {name} -->\n## {name}\n\n{body}\n\n<!-- end {name} -->\n"


def test_rewriting_a_section_keeps_the_others_byte_for_byte(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    for name in ("first", "second", "third"):
        write_section(out, section(name, "old rows"), f"<!-- {name} -->", f"<!-- end {name} -->")
    before = out.read_text()
    assert "<!-- end first -->\n\n<!-- second -->" in before
    for name in ("second", "third", "first"):
        write_section(out, section(name, "new rows"), f"<!-- {name} -->", f"<!-- end {name} -->")
        write_section(out, section(name, "old rows"), f"<!-- {name} -->", f"<!-- end {name} -->")
        assert out.read_text() == before, name
    write_section(out, section("second", "new rows"), "<!-- second -->", "<!-- end second -->")
    assert out.read_text() == before.replace(section("second", "old rows"),
                                             section("second", "new rows"))


def test_publish_writes_the_body_between_its_markers_only_when_asked(tmp_path, capsys):
    out = tmp_path / "BENCHMARKS.md"
    write_section(out, section("other", "rows"), "<!-- other -->", "<!-- end other -->")
    before = out.read_text()
    printed = publish(out, "<!-- b -->", "<!-- end b -->", ["## b", "", "| row |"], write=False)
    assert out.read_text() == before                       # --quick: printed, not written
    assert printed == "<!-- b -->\n## b\n\n| row |\n\n<!-- end b -->\n"
    assert printed in capsys.readouterr().out
    publish(out, "<!-- b -->", "<!-- end b -->", ["## b", "", "| row |"])
    assert out.read_text() == before + "\n" + printed      # appended after the others
