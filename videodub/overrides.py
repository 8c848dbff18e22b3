"""Values typed on the command line, made readable by Hydra's override grammar.

Hydra reads ``key=value`` with a grammar of its own: unquoted, a value may not hold ``?``,
``&``, ``=``, ``(``, ``[``, ``~``, ``#``, ``;`` or letters beyond ASCII, which paths and links
often do (``input=https://www.youtube.com/watch?v=...``, ``input=talk (1).mp4``). Such a value
is quoted here, as the user would have had to, before Hydra sees it. What is Hydra's own syntax
is left as typed: sweeps (a comma, unless the whole value names an existing file), interpolations
(``${...}``), lists and dicts, and Hydra's functions (``choice(...)``, ``range(...)``).
"""

from __future__ import annotations

import re
from pathlib import Path

# Hydra's grammar functions: a value starting with one of these is Hydra syntax, not a path.
_FUNCTIONS = re.compile(r"^\s*(choice|range|interval|glob|tag|sort|shuffle|int|float|str|bool"
                        r"|json_str|extend_list)\s*\(")


def hydra_quote(value: str) -> str:
    """``value`` as a single-quoted Hydra string that reads back as ``value``. In Hydra's
    quoted strings a backslash escapes only a quote, or the backslashes before one (or
    before the closing quote), so only those are doubled."""
    out = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
    out = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, out)
    return f"'{out}'"


def unquote(value: str) -> str:
    """A value as Hydra reads it when it is one quoted string (``'a b'`` is ``a b``)."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.errors import HydraException

        try:
            read = OverridesParser.create().parse_override(f"k={value}").value()
        except HydraException:
            return value[1:-1]
        return read if isinstance(read, str) else value[1:-1]
    return value


def _is_hydra_syntax(value: str) -> bool:
    return (value[:1] in "'\"[{" or "${" in value or bool(_FUNCTIONS.match(value))
            or ("," in value and not Path(value).exists()))


def quote_values(argv: list[str]) -> list[str]:
    """``argv`` with each ``key=value`` whose value Hydra would refuse (or read as other than
    typed) quoted: ``input=a (1).mp4`` becomes ``input='a (1).mp4'``. Flags, Hydra syntax and
    values Hydra reads as typed are left alone."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = None
    out = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if eq and value and not arg.startswith("-") and not _is_hydra_syntax(value):
            parser = parser or OverridesParser.create()
            try:
                # Non-ASCII letters are read unquoted by some of Hydra's rules and not others.
                needed = not value.isascii() or "," in value
                if not needed:
                    parser.parse_override(arg)
            except HydraException:
                needed = True
            if needed:
                arg = f"{key}={hydra_quote(value)}"
        out.append(arg)
    return out
