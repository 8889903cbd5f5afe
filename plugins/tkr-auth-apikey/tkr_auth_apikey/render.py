"""Writing a key entry as one TOML line, ready to paste into the ``keys`` array."""

from __future__ import annotations

from tkr_auth_apikey.settings import ApiKeyEntry

# Characters a TOML basic string cannot hold as they are (TOML 1.0, "String").
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string.

    Not ``json.dumps``: JSON writes characters outside the BMP as surrogate
    pairs (``\\ud83e\\udd16``), which TOML refuses.
    """
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def inline_table(entry: ApiKeyEntry) -> str:
    """``{sha256 = "…", sub = "…", kind = "…", name = "…", roles = [...]}``; name and roles only when set."""
    fields = [f"sha256 = {toml_string(entry.sha256)}", f"sub = {toml_string(entry.sub)}", f"kind = {toml_string(entry.kind)}"]
    if entry.name:
        fields.append(f"name = {toml_string(entry.name)}")
    if entry.roles:
        fields.append(f"roles = [{', '.join(toml_string(role) for role in entry.roles)}]")
    return "{" + ", ".join(fields) + "}"
