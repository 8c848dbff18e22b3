"""Language codes: which ones we accept and how to name them."""

from __future__ import annotations

from videodub.errors import VideodubError

# ISO 639-1 codes (plus haw, yue) understood by Whisper, the widest set any stage supports today.
KNOWN = frozenset((
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw he "
    "hi hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl "
    "nn no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz "
    "vi yi yo yue zh"
).split())


def check_language(code: str, key: str) -> str:
    """Normalise ``pt-BR``/``pt_br`` to ``pt-br`` and check the primary subtag is known."""
    norm = code.strip().replace("_", "-").lower()
    primary = norm.split("-", 1)[0]
    if primary not in KNOWN:
        raise VideodubError(
            f"{key}: unknown language code {code!r} (use an ISO 639-1 code such as en, es, de, fr, ja)")
    return norm


def primary(code: str) -> str:
    return code.split("-", 1)[0]
