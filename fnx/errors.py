"""The one error type users see."""


class FnxError(Exception):
    """A problem the user can fix; the message says what was wrong and what to do.

    The CLI prints it without a traceback and exits with code 1.
    """
