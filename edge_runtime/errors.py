"""The one exception type the CLI turns into a single clear error line."""


class EdgeposeError(Exception):
    """A problem with the user's input or environment, worded for the user.

    The message must name what is wrong (file, layer, shape) and, where possible,
    what to do about it. The CLI prints it as one line and exits non-zero.
    """
