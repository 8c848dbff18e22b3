"""The whole extension API of videodub: one registration hook per pipeline stage.

Each hook receives a ``register`` callback::

    register(name, factory, config=None, description="")

- ``name`` is what users select on the command line (``tts=<name>``).
- ``factory(config)`` returns the stage object; it is called once per job with the
  validated config (an instance of ``config``).
- ``config`` is a dataclass holding the implementation's options, with defaults.
  Its fields become ``<stage>.<field>=...`` command-line keys.

Built-in implementations (``videodub/builtin``) use exactly these hooks.
"""

import pluggy

hookspec = pluggy.HookspecMarker("videodub")


@hookspec
def register_ingesters(register):
    """Register ingest implementations: probe the input and extract its audio."""


@hookspec
def register_transcribers(register):
    """Register transcribe implementations: speech to timed source-language segments."""


@hookspec
def register_translators(register):
    """Register translate implementations: source segments to target-language segments."""


@hookspec
def register_aligners(register):
    """Register align implementations: fit each target line to its time slot."""


@hookspec
def register_tts(register):
    """Register tts implementations: target text to a speech clip."""


@hookspec
def register_mixers(register):
    """Register mix implementations: place clips over the original background."""


@hookspec
def register_muxers(register):
    """Register mux implementations: write the final video with its tracks."""
