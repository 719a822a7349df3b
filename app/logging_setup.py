"""Log lines that a request cannot forge (issue 12, item 5).

A URL path, a header or a file name can hold CR, LF or terminal escapes; written raw into the
server log they start a fake line ("... 200\\n2026-01-01 ERROR admin login") or rewrite the
operator's terminal. `EscapeControlCharacters` is a logging filter that replaces every control
character of a record's message and arguments with a visible escape (`\\n`, `\\r`, `\\x1b`);
`install_log_escaping` puts it on every handler of the root logger (`python -m app`), and
`gunicorn/logging.py` on gunicorn's error and access logs. A traceback keeps its line breaks, but
its other control characters are escaped and its lines are indented so none reads as a new record.

`loggable(text)` is what our own log calls wrap request text in: escaped and cut to a bounded
length, so a 4 kB path does not fill the log either.
"""

from __future__ import annotations

import logging
import re

#: longest piece of request text one of our log lines quotes
LOGGED_TEXT_LIMIT = 200
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_control_characters(text: str) -> str:
    """'a\\r\\nb\\x1b[31m' -> 'a\\\\r\\\\nb\\\\x1b[31m': one printable line, backslashes kept as they are."""
    return _CONTROL.sub(lambda match: _NAMED.get(match.group(), f"\\x{ord(match.group()):02x}"
                                                 if ord(match.group()) < 0x100 else f"\\u{ord(match.group()):04x}"),
                        text)


def loggable(value: object, limit: int = LOGGED_TEXT_LIMIT) -> str:
    """Request text (a path, a file name) fit for a log line: escaped, at most `limit` characters."""
    text = escape_control_characters(str(value))
    return text if len(text) <= limit else f"{text[:limit]}...[{len(text) - limit} more]"


class EscapeControlCharacters(logging.Filter):
    """Rewrites each record so that its message is one line of printable text.

    The message is formatted once here (`msg % args`) and escaped; the record then carries the
    result with no arguments, so every handler and formatter after this one sees the safe text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_control_characters_escaped", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the record as logging would show it
            message = f"{record.msg!r} % {record.args!r}"
        record.msg = escape_control_characters(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _indented_traceback(record.exc_text)
        if record.stack_info:
            record.stack_info = _indented_traceback(record.stack_info)
        record._control_characters_escaped = True
        return True


def _indented_traceback(text: str) -> str:
    """A traceback's lines, each escaped and indented, so none looks like a log record."""
    return "\n".join("    | " + escape_control_characters(line) for line in text.splitlines())


def install_log_escaping(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of `logger` (the root logger by default), once each."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(existing, EscapeControlCharacters) for existing in handler.filters):
            handler.addFilter(EscapeControlCharacters())


def configure_logging(level: int = logging.INFO) -> None:
    """`python -m app`'s logging: one line per record on stderr, control characters escaped
    (the development server's request lines included: they reach the root logger's handler)."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    install_log_escaping()
