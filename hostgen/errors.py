"""The one error type hostgen reports to a user."""


class HostgenError(Exception):
    """A user-facing failure: printed as `hostgen: <message>`, exit status 2.

    The message is one line that names the bad value and what would fix it.
    """
