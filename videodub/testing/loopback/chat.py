"""The chat route's content: English "translated" word by word into Spanish from a small
dictionary, answered as the JSON a structured-output request asks for, and spoiled on demand
by the chat faults."""

from __future__ import annotations

import json
import math
import re
from typing import Any

FIXED_REPLY = "Hola desde el servidor local."

SPANISH = dict(pair.split(":") for pair in (
    "the:el a:un an:un is:es are:son was:fue were:eran be:ser and:y or:o but:pero of:de to:a "
    "in:en on:en at:en for:para with:con from:desde about:sobre this:este that:que these:estos "
    "we:nosotros you:tú it:eso he:él she:ella they:ellos i:yo my:mi your:tu our:nuestro "
    "video:vídeo talk:charla today:hoy hello:hola welcome:bienvenidos thanks:gracias "
    "thank:gracias good:bueno morning:mañana everyone:todos how:cómo what:qué when:cuando "
    "where:dónde here:aquí there:allí very:muy not:no yes:sí now:ahora first:primero "
    "then:luego next:siguiente time:tiempo world:mundo people:gente language:idioma "
    "speech:discurso voice:voz sound:sonido music:música short:corto long:largo new:nuevo "
    "look:mirar watching:mirando day:día test:prueba example:ejemplo can:puede will:va "
    "have:tener has:tiene dubbed:doblado translated:traducido transcribed:transcrito").split())


def _translate_word(match: re.Match[str]) -> str:
    word = match.group(0)
    spanish = SPANISH.get(word.lower())
    if spanish is None:
        return word
    if word.isupper() and len(word) > 1:
        return spanish.upper()
    return spanish[0].upper() + spanish[1:] if word[0].isupper() else spanish


def translate(text: str, max_chars: int | None = None) -> str:
    """English -> "Spanish", word by word from a small dictionary, keeping punctuation and case.

    With ``max_chars``, trailing words are dropped until the result fits (one word always stays).
    """
    result = re.sub(r"[^\W\d_]+(?:'[^\W\d_]+)*", _translate_word, text)
    if max_chars is None or len(result) <= max_chars:
        return result
    words = result.split()
    while len(words) > 1 and len(" ".join(words)) > max_chars:
        words.pop()
    return " ".join(words)


def _message_text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content
                       if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def prompt_tokens(messages: Any) -> int:
    """The estimate used for usage and tokens-per-minute: a token per 4 characters of content."""
    if not isinstance(messages, list):
        return 0
    return math.ceil(sum(len(_message_text(m)) for m in messages) / 4)


def lines_of(messages: list[Any]) -> list[dict[str, Any]] | None:
    """The ``lines`` of the last user message when its content is JSON that has them."""
    user = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if not user:
        return None
    try:
        parsed = json.loads(_message_text(user[-1]))
    except ValueError:
        return None
    lines = parsed.get("lines") if isinstance(parsed, dict) else None
    if not isinstance(lines, list):
        return None
    return [line for line in lines
            if isinstance(line, dict) and "id" in line and isinstance(line.get("text"), str)]


def _array_key(response_format: Any) -> str | None:
    """The key structured content goes under: the schema's first array property, or None."""
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_object":
        return "translations"
    if response_format.get("type") != "json_schema":
        return None
    schema = (response_format.get("json_schema") or {}).get("schema") or {}
    for name, prop in (schema.get("properties") or {}).items():
        kind = prop.get("type") if isinstance(prop, dict) else None
        if kind == "array" or (isinstance(kind, list) and "array" in kind):
            return name
    return "translations"


def _translations(lines: list[dict[str, Any]], fault: str | None) -> list[dict[str, Any]]:
    items = []
    for line in lines:
        max_chars = line.get("max_chars")
        limit = max_chars if isinstance(max_chars, int) and max_chars > 0 else None
        items.append({"id": line["id"], "text": translate(line["text"], limit)})
    middle = len(items) // 2
    if fault == "missing_id" and items:
        del items[middle]
    elif fault == "dup_id" and items:
        items.insert(middle, dict(items[middle]))
    return items


def chat_content(lines: list[dict[str, Any]] | None, response_format: Any,
                 fault: str | None) -> str:
    """The assistant's content: the translations as JSON, or a fixed reply to anything else."""
    key = _array_key(response_format)
    if lines is None and key is None:
        content = FIXED_REPLY
    else:
        content = json.dumps({key or "translations": _translations(lines or [], fault)},
                             ensure_ascii=False)
    if fault == "truncated":
        return content[:len(content) // 2]
    if fault == "bad_json_content":
        return f"Sure! Here is the JSON you asked for:\n{content}"
    return content
