"""Store URLs: which backend, where, and how to say it without its secrets.

The parser knows no backend (it imports none): :mod:`failfirst.store.factory` picks one.

Accepted forms (``--store URL`` on the command line, ``store=`` in the Python API):

- ``sqlite::memory:`` — an in-memory SQLite database (the simulator's default);
- ``sqlite:PATH`` or ``sqlite:///ABSOLUTE/PATH`` or a bare ``PATH`` — a SQLite file;
- ``postgresql://[user[:password]@]host[:port]/database[?schema=NAME&...]`` (also
  ``postgres://``) — a PostgreSQL database; ``schema`` names the schema failfirst's
  tables live in (default ``failfirst``); other query parameters go to libpq.

:attr:`StoreURL.redacted` is the only form that may be printed, logged or stored:
the password is replaced by ``***``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from failfirst.store.interface import StoreError

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MEMORY = ":memory:"


@dataclass(frozen=True)
class StoreURL:
    kind: str  # "sqlite" or "postgresql"
    #: SQLite: the file path, or ":memory:".
    path: str = ""
    #: PostgreSQL: the URL handed to libpq (without failfirst's own parameters).
    conninfo: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    schema: str | None = None
    #: The URL with its password replaced by ``***``: the only form that is ever shown.
    redacted: str = ""

    def __str__(self) -> str:
        return self.redacted


def parse_store_url(text: str) -> StoreURL:
    """Parse a store URL; a malformed one raises
    :class:`failfirst.store.interface.StoreError` (without the password)."""
    if not isinstance(text, str) or not text.strip():
        raise StoreError("store URL: empty")
    text = text.strip()
    lowered = text.lower()
    if lowered.startswith(("postgresql://", "postgres://")):
        return _parse_postgresql(text)
    if lowered.startswith("sqlite:"):
        rest = text[len("sqlite:"):]
        if rest == MEMORY:
            return StoreURL("sqlite", path=MEMORY, redacted="sqlite::memory:")
        if rest.startswith("///"):
            path = unquote(rest[2:])
        elif rest.startswith("//"):
            raise StoreError(f"store URL {text!r}: use sqlite:PATH or sqlite:///ABSOLUTE/PATH")
        else:
            path = unquote(rest)
        if not path:
            raise StoreError(f"store URL {text!r}: no path")
        return StoreURL("sqlite", path=path, redacted=f"sqlite:{path}")
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
        scheme = text.split(":", 1)[0]
        raise StoreError(f"store URL: unknown scheme {scheme!r} (sqlite: or postgresql://)")
    return StoreURL("sqlite", path=text, redacted=f"sqlite:{text}")


def _parse_postgresql(text: str) -> StoreURL:
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise StoreError("store URL: malformed postgresql:// URL") from None
    password = unquote(parts.password) if parts.password is not None else ""
    params = parse_qsl(parts.query, keep_blank_values=True)
    schema = None
    kept = []
    for key, value in params:
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
    if schema is not None and not _SCHEMA_NAME.match(schema):
        raise StoreError(f"store URL: schema {schema!r} must be a lower-case identifier")
    host = parts.hostname or ""
    netloc_host = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc_host += f":{port}"
    user = quote(unquote(parts.username), safe="") if parts.username else ""
    shown_user = user + (":***" if parts.password is not None else "")
    redacted_netloc = f"{shown_user}@{netloc_host}" if shown_user else netloc_host
    query = urlencode(kept)
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, query, ""))
    shown_query = urlencode(params)
    redacted = urlunsplit(("postgresql", redacted_netloc, parts.path, shown_query, ""))
    return StoreURL("postgresql", conninfo=conninfo, password=password, schema=schema,
                    redacted=redacted)


def redact(text: str) -> str:
    """``text`` with the password of any postgresql:// URL in it replaced by ``***``."""
    return re.sub(r"(postgres(?:ql)?://[^:/@\s]*):[^@\s]*@", r"\1:***@", text)
