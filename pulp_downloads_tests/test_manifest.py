"""The PULP_MANIFEST parser: plain unit tests, no database."""
from __future__ import annotations

import pytest

from pulp_downloads.sync.manifest import ManifestError, parse_manifest

SHA = "a" * 64


# --- manifest parsing -------------------------------------------------------------------------
class TestManifest:
    def test_parses_lines_and_skips_blank_ones(self):
        entries = parse_manifest(f"a.txt,{SHA},3\n\nsub/dir/b,c.txt,{SHA.upper()},0\n")
        assert [(e.relative_path, e.size, e.line) for e in entries] == [
            ("a.txt", 3, 1), ("sub/dir/b,c.txt", 0, 3)]
        assert entries[1].sha256 == SHA

    @pytest.mark.parametrize("line,problem", [
        ("only-two,fields", "expected three fields 'relative_path,sha256,size'"),
        (f"/etc/passwd,{SHA},1", "relative_path is an absolute path"),
        (f"../up,{SHA},1", "escapes the repository"),
        (f"a/../../b,{SHA},1", "escapes the repository"),
        (f"a//b,{SHA},1", "not normalised"),
        (f"./a,{SHA},1", "not normalised"),
        (f"a\\b,{SHA},1", "backslash"),
        ("a,xyz,1", "sha256 is not a 64-character hex digest"),
        (f"a,{SHA},-1", "size is not a non-negative integer"),
        (f"a,{SHA},1.5", "size is not a non-negative integer"),
        (f"a,{SHA},\u00b2", "size is not a non-negative integer"),
        (f"a,{SHA},{'9' * 5000}", "size is not a non-negative integer"),
        (f"a,{SHA},{2**63}", "size is larger than"),
        (f",{SHA},1", "relative_path is empty"),
    ])
    def test_bad_lines_are_refused_naming_the_line_not_its_content(self, line, problem):
        with pytest.raises(ManifestError) as info:
            parse_manifest(f"ok,{SHA},1\n{line}\n")
        assert info.value.line == 2
        assert problem in str(info.value) and "line 2" in str(info.value)
        for part in line.split(","):
            if len(part) > 2:
                assert part not in str(info.value).replace(problem, "")

    def test_duplicate_paths_are_refused(self):
        with pytest.raises(ManifestError, match="listed twice"):
            parse_manifest(f"a,{SHA},1\na,{SHA},1\n")
