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

# Hydra's command-line flags.
PASS_THROUGH_FLAGS = {"--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--resolve",
                      "--shell-completion", "-sc", "--version", "--package", "-p"}
MULTIRUN_FLAGS = {"-m", "--multirun"}
# Hydra flags whose value may follow as the next argument.
VALUE_FLAGS = {"--config-dir", "-cd", "--config-name", "-cn", "--config-path", "-cp",
               "--experimental-rerun", "--package", "-p"}
# Flags that select another config than the packaged one: Hydra itself validates those jobs.
CONFIG_FLAGS = {"--config-dir", "-cd", "--config-name", "-cn", "--config-path", "-cp"}
# Flags whose word (``--cfg job``, ``--info plugins``) may follow.
WORD_FLAGS = {"--cfg", "-c", "--info", "-i", "--shell-completion", "-sc"}
KNOWN_FLAGS = PASS_THROUGH_FLAGS | MULTIRUN_FLAGS | VALUE_FLAGS | {"--run", "-r"}

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
            or ("," in value and not Path(value).exists() and not _one_link(value)))


def _one_link(value: str) -> bool:
    """A link with commas in it (streaming CDNs write ``/v,480p,720p,.mp4.csmil/``): one
    input, not a sweep, unless each comma starts another link or an existing file."""
    from videodub.inputs import is_url

    first, *rest = value.split(",")
    return is_url(first) and not all(is_url(p) or _exists(p) for p in rest)


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


def plain_input(argv: list[str]) -> list[str]:
    """``argv`` with a file, folder or link typed without ``input=`` (``videodub talk.mp4
    target_lang=es``, as most tools take it) made ``input=``; ``--key value`` and other words
    Hydra would answer with a parser error are refused in one line saying what to type."""
    from videodub.errors import VideodubError
    from videodub.inputs import is_url

    out: list[str] = []
    given = any(a.startswith(("input=", "+input=")) for a in argv)
    for i, arg in enumerate(argv):
        flag = argv[i - 1] if i else ""
        if flag in VALUE_FLAGS or (flag in WORD_FLAGS and "=" not in arg):
            out.append(arg)  # the value of the flag before it
        elif arg.startswith("-"):
            name = arg.split("=", 1)[0]
            if name not in KNOWN_FLAGS:
                after = argv[i + 1] if i + 1 < len(argv) else "..."
                typed = arg.lstrip("-") if "=" in arg else f"{name.lstrip('-')}={after}"
                raise VideodubError(f"{arg}: not an option; settings are key=value, e.g. {typed}")
            out.append(arg)
        elif is_url(arg) or ("=" not in arg and (not arg.startswith("~") or _exists(arg))):
            if given:
                raise VideodubError(f"{arg}: not a key=value setting, and input= is given")
            if not (is_url(arg) or _exists(arg)):
                raise VideodubError(f"{arg}: no such file, and not a key=value setting "
                                    f"(e.g. input=talk.mp4 target_lang=es)")
            given = True
            out.append(f"input={arg}")
        else:
            out.append(arg)
    return out


def _exists(path: str) -> bool:
    try:
        return Path(path).expanduser().exists()
    except RuntimeError:  # ``~name`` for a user who does not exist: Hydra's deletion syntax
        return False
