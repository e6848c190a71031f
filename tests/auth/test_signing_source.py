"""Signatures and digests are compared in constant time everywhere in the package: no `==` on them."""

from __future__ import annotations

import re
from pathlib import Path

import arkserve

PACKAGE = Path(arkserve.__file__).parent
SUSPECT = re.compile(r"signature.*==|==.*signature|digest.*==|==.*digest", re.IGNORECASE)
PUBLIC = "# public content address"  # marks a comparison of a published hash (image or model digest), no secret
STRING_LITERAL = re.compile(r"([\'\"]).*?\1")  # a comparison with the word "signature" is not one of a signature


def offending_lines(source: str) -> list[str]:
    found = []
    for line in source.splitlines():
        if line.rstrip().endswith(PUBLIC):
            continue
        code = STRING_LITERAL.sub('""', line).split("#", 1)[0]
        if SUSPECT.search(code):
            found.append(line.strip())
    return found


def test_pattern_catches_plain_comparisons() -> None:
    assert offending_lines("    if sig.signature == expected:\n")
    assert offending_lines("    ok = expected == parsed.signature\n")
    assert offending_lines("    return mac.digest() == claimed\n")
    assert offending_lines("    return claimed == mac.hexdigest()\n")
    assert not offending_lines("    if not hmac.compare_digest(expected, sig):\n")
    assert not offending_lines("    x = 1  # signature == y in a comment is fine\n")
    assert not offending_lines('    auth = "signature" if caller.via == "signature" else "session"\n')
    assert offending_lines('    if headers["x-signature"] == computed_signature:\n')
    assert not offending_lines(f"    same = manifest_digest == digest  {PUBLIC}\n")
    assert offending_lines(f"    same = manifest_digest == digest  {PUBLIC} # then more\n")


def test_no_equality_comparison_of_signatures_in_package() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert any(f.name == "signing.py" for f in files)
    offenders = {
        str(f.relative_to(PACKAGE)): lines for f in files if (lines := offending_lines(f.read_text(encoding="utf-8")))
    }
    assert offenders == {}, "compare signatures/digests with hmac.compare_digest, not ==: " + repr(offenders)
