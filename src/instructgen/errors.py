"""Errors a user can cause. The CLI turns them into exit code 2, the server into a 4xx."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input: a bad file, flag, config key or request."""

    status_code = 400

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ):
        self.file, self.line, self.field = file, line, field
        where = ""
        if file is not None:
            where = str(file) + (f":{line}" if line is not None else "") + ": "
        if field is not None:
            where += f"field '{field}': "
        super().__init__(where + message)


class ConfigError(UserError):
    """A config file or flag names an unknown key or holds a value of the wrong type."""


class DataError(UserError):
    """An input data file is missing, empty or malformed."""


class ModelDirError(UserError):
    """A model directory is missing, incomplete, or holds an architecture we cannot load."""
