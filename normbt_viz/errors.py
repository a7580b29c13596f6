"""User-facing errors. Each carries one line that names the problem (file, row, column, value), so the CLI
can print it without a traceback and the app can show it in the page."""


class NormBTError(Exception):
    """Base class for every error a user can cause with bad input."""


class DataError(NormBTError, ValueError):
    """A preference dataset that cannot be read or does not validate."""


class SpecError(NormBTError, ValueError):
    """A run spec or option value that is invalid."""


class BackboneError(NormBTError, ValueError):
    """A backbone that cannot be found or loaded."""


class DivergedError(NormBTError):
    """A run whose loss stopped being a finite number (a learning rate far too large, for one)."""


def first_line(exc: BaseException) -> str:
    """An exception as one line: library errors can span many, and a user-facing message must not.

    The first non-empty line of its text, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
