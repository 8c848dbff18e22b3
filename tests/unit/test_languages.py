"""Language codes: which are accepted and in what form, and how codes and names convert."""

from __future__ import annotations

import pytest

from videodub.errors import VideodubError
from videodub.languages import check_language, code_of, name_of, primary


@pytest.mark.parametrize("given, normal", [
    ("es", "es"), ("EN", "en"), (" de ", "de"), ("pt-BR", "pt-br"), ("pt_BR", "pt-br"),
    ("zh-Hant-TW", "zh-hant-tw"), ("haw", "haw"), ("yue", "yue"),
])
def test_codes_and_region_forms_are_accepted_and_normalised(given, normal):
    assert check_language(given, "target_lang") == normal


@pytest.mark.parametrize("given", ["xx", "xq-ES", "", "e", "es es", "klingon"])
def test_an_unknown_code_is_one_line_naming_the_key(given):
    with pytest.raises(VideodubError) as caught:
        check_language(given, "source_lang")
    message = str(caught.value)
    assert message.startswith(f"source_lang: unknown language code {given!r}")
    assert "ISO 639-1" in message and "\n" not in message


@pytest.mark.parametrize("given, hint", [
    ("Spanish", "target_lang=es is Spanish"), ("haitian-creole", "target_lang=ht is Haitian Creole"),
    ("spa", "target_lang=es is Spanish"), ("ger", "target_lang=de is German"),
])
def test_a_language_named_or_in_three_letters_gets_its_code_in_the_error(given, hint):
    """Not taken as it is (the code names the output files), but the line says what to type."""
    with pytest.raises(VideodubError, match=f"^target_lang: unknown language code '{given}' "
                                            f"\\({hint}\\)$"):
        check_language(given, "target_lang")


def test_primary_is_the_language_without_the_region():
    assert primary("pt-br") == "pt"
    assert primary("zh-hant-tw") == "zh"
    assert primary("es") == "es"


def test_name_of_gives_the_english_name_for_prompts():
    assert name_of("es") == "Spanish"
    assert name_of("pt-br") == "Portuguese"
    assert name_of("ht") == "Haitian Creole"
    assert name_of("tlh") == "tlh"  # unknown codes are returned as given


@pytest.mark.parametrize("reported, code", [
    ("english", "en"), ("English", "en"), (" SPANISH ", "es"), ("en", "en"), ("pt-BR", "pt"),
    ("haitian creole", "ht"), ("cantonese", "yue"),
])
def test_code_of_reads_what_servers_report(reported, code):
    assert code_of(reported) == code


def test_code_of_an_unknown_language_is_none():
    assert code_of("klingon") is None
    assert code_of("xx-YY") is None


def test_every_known_code_has_a_name_that_converts_back():
    from videodub.languages import KNOWN, NAMES

    assert set(NAMES) == KNOWN
    for code in KNOWN:
        assert code_of(name_of(code)) == code, code
