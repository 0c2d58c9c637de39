"""Errors that reach a user as one clear line (the CLI prints them without a traceback)."""


class UserError(Exception):
    """Something the user can fix: a port in use, a missing tool, a bad file. The message is the fix."""
