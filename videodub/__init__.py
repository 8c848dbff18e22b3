"""videodub: dub a video by transcribing, translating, fitting, synthesizing and mixing its speech."""

import pluggy

__version__ = "0.1.0"

#: Decorator for plugin hook implementations (``@hookimpl def register_tts(register): ...``).
hookimpl = pluggy.HookimplMarker("videodub")

__all__ = ["__version__", "hookimpl"]
