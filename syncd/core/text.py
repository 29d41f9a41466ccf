"""Control characters: what is stripped from directory values, refused in ids, and
escaped in everything syncd prints.

A value read from a directory or from Nebuly is someone else's text. Printed raw,
`ESC ] 0;...BEL` retitles an admin's terminal and `ESC [2J` clears it; a C1 CSI
(U+009B) does the same on terminals that honour 8-bit controls; a bidi override
(U+202E) makes `moc.evil@ann` display as another address. Pure: no I/O.
"""

from __future__ import annotations

import re

# C0 (tab and newline included: inside one value they fake lines), DEL and C1.
_C0_C1 = "\x00-\x1f\x7f-\x9f"
# Bidirectional formatting: ALM, LRM, RLM, the embeddings and overrides (LRE..RLO),
# and the isolates (LRI..PDI).
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"

CONTROLS = re.compile(f"[{_C0_C1}{_BIDI}]")
_C0_C1_ONLY = re.compile(f"[{_C0_C1}]")
_BIDI_ONLY = re.compile(f"[{_BIDI}]")
# Not C0: json.dumps escapes it inside strings, and its newlines between tokens are layout.
_IN_JSON = re.compile(f"[\x7f-\x9f{_BIDI}]")


def strip_controls(text: str) -> str:
    """A directory value made safe to store and show: C0/C1 controls become spaces
    (a tab or newline separated words), bidi formatting characters are removed."""
    if CONTROLS.search(text) is None:
        return text
    return _BIDI_ONLY.sub("", _C0_C1_ONLY.sub(" ", text)).strip()


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """`text` with every control and bidi character shown as `\\x1b` / `\\u202e`, so
    what reaches a terminal is exactly what is printed, never an instruction to it."""
    if CONTROLS.search(text) is None:
        return text
    return CONTROLS.sub(_escape, text)


def escape_json_text(text: str) -> str:
    """JSON text (from json.dumps with ensure_ascii=False) with C1 and bidi characters
    as `\\uXXXX` escapes: still the same JSON value, but inert on a terminal. (json.dumps
    already escapes C0.) They can only occur inside strings, where the escape is valid."""
    if _IN_JSON.search(text) is None:
        return text
    return _IN_JSON.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
