"""The built-in espeak voice against the shared tts suite that plugin authors use."""

from videodub.testing import TTSSuite


class TestEspeakSuite(TTSSuite):
    impl_name = "espeak"
    overrides = {"words_per_minute": 190, "variant": "m3"}
    invalid_overrides = [{"pitch": 150}, {"words_per_minute": 20}, {"words_per_minute": "fast"},
                         # The stage's own option, checked alongside espeak's.
                         {"workers": -1}]
