"""The exception types whose message is shown to the user as ``error: <message>``."""


class VideodubError(Exception):
    """A problem the user can fix (bad input, bad config, missing model). One line, no traceback."""


class Cancelled(Exception):
    """The job was cancelled (Ctrl-C or another stage failed)."""


class NoSpace(VideodubError):
    """A disk filled up: says which folder, and what the job was doing."""


def no_space(exc: OSError, doing: str, where: object = None) -> NoSpace:
    """``no space left on <dir> while <doing>`` for a write that failed with ENOSPC (or a
    quota, EDQUOT); ``where`` is the folder when the error does not name a file."""
    import os.path

    written = exc.filename2 or exc.filename  # a copy names its source first
    folder = os.path.dirname(str(written)) if written else str(where or "the disk")
    return NoSpace(f"no space left on {folder} while {doing}; free space there and run again "
                   f"(finished work is kept)")


def is_no_space(exc: BaseException) -> bool:
    import errno

    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
