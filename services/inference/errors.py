"""The service's exception, importable without torch (the app imports it before any worker forks)."""


class ModelUnavailable(RuntimeError):
    """The artifacts are missing or corrupt; the message says which file and why."""
