"""The one exception type whose message is shown to the user as ``error: <message>``."""


class VideodubError(Exception):
    """A problem the user can fix (bad input, bad config, missing model). One line, no traceback."""


class Cancelled(Exception):
    """The job was cancelled (Ctrl-C or another stage failed)."""
