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
        meant = CODES.get(norm.replace("-", " ")) or tag_language(norm)
        hint = (f"{key}={meant} is {name_of(meant)}" if meant and meant != primary else
                "use an ISO 639-1 code such as en, es, de, fr, ja")
        raise VideodubError(f"{key}: unknown language code {code!r} ({hint})")
    return norm


def primary(code: str) -> str:
    return code.split("-", 1)[0]


# Whisper's English names for its languages (what a verbose_json transcription reports), by code.
NAMES = dict(item.split(":") for item in (
    "af:afrikaans am:amharic ar:arabic as:assamese az:azerbaijani ba:bashkir be:belarusian "
    "bg:bulgarian bn:bengali bo:tibetan br:breton bs:bosnian ca:catalan cs:czech cy:welsh "
    "da:danish de:german el:greek en:english es:spanish et:estonian eu:basque fa:persian "
    "fi:finnish fo:faroese fr:french gl:galician gu:gujarati ha:hausa haw:hawaiian he:hebrew "
    "hi:hindi hr:croatian ht:haitian_creole hu:hungarian hy:armenian id:indonesian is:icelandic "
    "it:italian ja:japanese jw:javanese ka:georgian kk:kazakh km:khmer kn:kannada ko:korean "
    "la:latin lb:luxembourgish ln:lingala lo:lao lt:lithuanian lv:latvian mg:malagasy mi:maori "
    "mk:macedonian ml:malayalam mn:mongolian mr:marathi ms:malay mt:maltese my:myanmar ne:nepali "
    "nl:dutch nn:nynorsk no:norwegian oc:occitan pa:punjabi pl:polish ps:pashto pt:portuguese "
    "ro:romanian ru:russian sa:sanskrit sd:sindhi si:sinhala sk:slovak sl:slovenian sn:shona "
    "so:somali sq:albanian sr:serbian su:sundanese sv:swedish sw:swahili ta:tamil te:telugu "
    "tg:tajik th:thai tk:turkmen tl:tagalog tr:turkish tt:tatar uk:ukrainian ur:urdu uz:uzbek "
    "vi:vietnamese yi:yiddish yo:yoruba yue:cantonese zh:chinese").split())
NAMES = {code: name.replace("_", " ") for code, name in NAMES.items()}
CODES = {name: code for code, name in NAMES.items()}


def name_of(code: str) -> str:
    """``es`` -> ``Spanish`` (for prompts); unknown codes are returned as given."""
    name = NAMES.get(primary(code))
    return name.title() if name else code


def code_of(language: str) -> str | None:
    """A language as servers report it (``english``, ``English``, ``en``) -> ``en``."""
    value = language.strip().lower()
    if value in NAMES:
        return value
    return CODES.get(value) or (primary(value) if primary(value) in NAMES else None)


# ISO 639-1 -> ISO 639-2 for track language tags.
ISO639_2 = {
    "af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "ca": "cat", "cs": "ces", "cy": "cym",
    "da": "dan", "de": "deu", "el": "ell", "en": "eng", "es": "spa", "et": "est", "eu": "eus",
    "fa": "fas", "fi": "fin", "fr": "fra", "ga": "gle", "gl": "glg", "gu": "guj", "he": "heb",
    "hi": "hin", "hr": "hrv", "hu": "hun", "hy": "hye", "id": "ind", "is": "isl", "it": "ita",
    "ja": "jpn", "ka": "kat", "kk": "kaz", "ko": "kor", "lt": "lit", "lv": "lav", "mk": "mkd",
    "ml": "mal", "mr": "mar", "ms": "msa", "mt": "mlt", "nl": "nld", "no": "nor", "pa": "pan",
    "pl": "pol", "pt": "por", "ro": "ron", "ru": "rus", "sk": "slk", "sl": "slv", "sq": "sqi",
    "sr": "srp", "sv": "swe", "sw": "swa", "ta": "tam", "te": "tel", "th": "tha", "tl": "tgl",
    "tr": "tur", "uk": "ukr", "ur": "urd", "vi": "vie", "zh": "zho",
}


def lang3(code: str | None) -> str:
    """The ISO 639-2 tag of a language code, as media files tag their tracks (``und``: none)."""
    return ISO639_2.get(primary(code), "und") if code else "und"
# ISO 639-2 bibliographic tags, which some files use, -> the terminology tags above.
ISO639_2B = {"alb": "sqi", "arm": "hye", "baq": "eus", "chi": "zho", "cze": "ces", "dut": "nld",
             "fre": "fra", "geo": "kat", "ger": "deu", "gre": "ell", "ice": "isl", "mac": "mkd",
             "may": "msa", "per": "fas", "rum": "ron", "slo": "slk", "wel": "cym"}
_FROM_639_2 = {three: two for two, three in ISO639_2.items()}


def tag_language(tag: str | None) -> str | None:
    """A track's language tag (``eng``, ``fre``, ``en``, ``en-US``) as an ISO 639-1 code;
    None for no tag, ``und`` or one not known."""
    if not tag:
        return None
    value = tag.strip().lower().replace("_", "-")
    three = ISO639_2B.get(value, value)
    if three in _FROM_639_2:
        return _FROM_639_2[three]
    two = primary(value)
    return two if len(two) == 2 and two in KNOWN else None
