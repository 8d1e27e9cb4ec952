"""User-facing errors: printed as one clear line by the CLI, never as a traceback."""


class UserError(Exception):
    """Something the user can fix (bad params, missing files, offline weights)."""


class ParamsError(UserError):
    """A bad value in params.yaml; the message names the key and the allowed values."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"params.yaml: {key}: {message}")
