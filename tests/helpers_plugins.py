"""Broken plugin packages on disk, for the plugin-loading tests: ``unit/test_plugins.py`` loads
them in this process, ``e2e/test_plugins.py`` puts them on a command line's ``PYTHONPATH``.

``fake_distribution(folder, name)`` writes an installed-looking distribution (a
``*.dist-info`` folder with a ``videodub`` entry point, and the module it names) that fails to
load for the reason ``BROKEN_PLUGINS[name]`` gives.
"""

from __future__ import annotations

from pathlib import Path

BROKEN_PLUGINS = {
    # entry-point name: (module source, the reason the warning gives)
    "broken": ("import a_missing_dependency  # not installed\n",
               "No module named 'a_missing_dependency'"),
    "typo": ("import videodub\n\n\n@videodub.hookimpl\ndef register_ttss(register):\n"
             "    pass\n", "unknown hook 'register_ttss'"),
}


def fake_distribution(folder: Path, name: str) -> Path:
    """An installed-looking distribution ``fake-<name>-plugin`` whose ``videodub`` entry point
    ``<name>`` is broken as BROKEN_PLUGINS says."""
    info = folder / f"fake_{name}_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: fake-{name}-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[videodub]\n{name} = fake_{name}_videodub_plugin\n")
    (folder / f"fake_{name}_videodub_plugin.py").write_text(BROKEN_PLUGINS[name][0])
    return folder
