"""Lets the tests run from a source checkout: an installed videodub-voicefx is used when
there is one, otherwise the package next to this folder (registered by the tests in-process)."""

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("videodub_voicefx") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
