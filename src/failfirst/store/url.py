"""Store URLs: which backend, where, and how to say it without its secrets.

The parser knows no backend (it imports none): :mod:`failfirst.store.factory` picks one.

Accepted forms (``--store URL`` on the command line, ``store=`` in the Python API):

- ``sqlite::memory:`` — an in-memory SQLite database (the simulator's default);
- ``sqlite:PATH`` or ``sqlite:///ABSOLUTE/PATH`` or a bare ``PATH`` — a SQLite file;
- ``postgresql://[user[:password]@][host][:port][,...]/database[?schema=NAME&...]`` (also
  ``postgres://``) — a PostgreSQL database, in any form libpq takes (no host: the
  local socket; several hosts; any libpq parameter). ``schema`` names the schema
  failfirst's tables live in (default ``failfirst``); it is the one parameter failfirst
  owns, and the only change made to the URL before libpq reads it: every other
  character reaches libpq as the user wrote it (a ``%20`` stays ``%20``).

:attr:`StoreURL.redacted` is the only form that may be printed, logged or stored:
the password in the user part and every secret libpq parameter
(:data:`SECRET_PARAMETERS`) show as ``***``. :meth:`StoreURL.scrub` takes the same
secrets out of any message (a driver's error line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from failfirst.store.echo import shown
from failfirst.store.interface import StoreError

#: A schema name failfirst accepts: a plain lower-case identifier (no quoting needed).
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}", re.ASCII)
#: Schema names that are not the user's to choose: PostgreSQL reserves ``pg_`` (CREATE
#: SCHEMA refuses it), and ``ff_sim_`` names failfirst's simulation schemas, which a
#: later run drops once their owner is gone.
RESERVED_SCHEMA_PREFIXES = ("pg_", "ff_sim_")
MEMORY = ":memory:"
#: libpq's connection parameters that hold a secret: those its option table marks for
#: hiding (``password``, ``sslpassword``) and the OAuth client secret (PostgreSQL 18).
SECRET_PARAMETERS = frozenset({"password", "sslpassword", "oauth_client_secret"})
#: The query parameters failfirst owns and takes out before libpq reads the URL.
OWN_PARAMETERS = frozenset({"schema"})
_HIDDEN = "***"
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)


@dataclass(frozen=True)
class StoreURL:
    kind: str  # "sqlite" or "postgresql"
    #: SQLite: the file path, or ":memory:".
    path: str = ""
    #: PostgreSQL: the URL handed to libpq (the user's, without failfirst's parameters).
    conninfo: str = field(default="", repr=False)
    #: PostgreSQL: every secret the URL holds, as written and decoded (what :meth:`scrub` hides).
    secrets: tuple[str, ...] = field(default=(), repr=False)
    schema: str | None = None
    #: The URL with every secret replaced by ``***``: the only form that is ever shown.
    redacted: str = ""

    def __str__(self) -> str:
        return self.redacted

    def scrub(self, text: str) -> str:
        """``text`` (say, a driver's error message) with this URL's secrets hidden."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, _HIDDEN)
        return text


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
            raise StoreError(f"store URL {shown(text)}: use sqlite:PATH or sqlite:///ABSOLUTE/PATH")
        else:
            path = unquote(rest)
        if not path:
            raise StoreError(f"store URL {shown(text)}: no path")
        return StoreURL("sqlite", path=path, redacted=f"sqlite:{path}")
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
        scheme = text.split(":", 1)[0]
        raise StoreError(f"store URL: unknown scheme {shown(scheme)} (sqlite: or postgresql://)")
    return StoreURL("sqlite", path=text, redacted=f"sqlite:{text}")


def _malformed(why: str) -> StoreError:
    # Never the URL itself: a malformed URL may hold its password anywhere.
    return StoreError(f"store URL: malformed postgresql:// URL ({why})")


def _parse_postgresql(text: str) -> StoreURL:
    """Split the URL as libpq does (``scheme://[userinfo@]hosts[/dbname][?params]``),
    keep it as written except failfirst's own parameters, and build its redacted form."""
    scheme, rest = text.split("://", 1)
    before_query, has_query, query = rest.partition("?")
    authority, slash, path = before_query.partition("/")
    if "#" in before_query:
        raise _malformed("a '#' before the parameters: percent-encode it as %23")
    if "@" in path:  # a password holding an unencoded '/' would show here
        raise _malformed("an '@' after the host: percent-encode '/', '?' and '@' in a password "
                         "(%2F, %3F, %40)")
    userinfo, at, hosts = authority.rpartition("@")
    if at and "@" in userinfo:
        raise _malformed("two '@' before the host: percent-encode '@' in a password as %40")
    secrets: list[str] = []
    shown_userinfo = userinfo
    if at:
        user, colon, password = userinfo.partition(":")
        if colon:
            secrets += [password, unquote(password)]
            shown_userinfo = f"{user}:{_HIDDEN}"
    for host in hosts.split(","):
        port = host.rpartition("]")[2] if host.startswith("[") else host
        _, colon, port = port.rpartition(":")
        if colon and port and (not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535):
            raise _malformed("a port must be a number in 1..65535")
    schema = None
    kept: list[str] = []
    shown_params: list[str] = []
    for param in query.split("&") if query else []:
        raw_key, eq, value = param.partition("=")
        key = unquote(raw_key)
        if key in OWN_PARAMETERS:
            if schema is not None:
                raise StoreError("store URL: schema given twice")
            schema = unquote(value)
            shown_params.append(param)
            continue
        kept.append(param)
        if key in SECRET_PARAMETERS and eq:
            secrets += [value, unquote(value)]
            shown_params.append(f"{raw_key}={_HIDDEN}")
        else:
            shown_params.append(param)
    if schema is not None:
        check_schema_name(schema)
    conninfo = f"{scheme}://{before_query}" + (f"?{'&'.join(kept)}" if kept else "")
    shown_authority = f"{shown_userinfo}@{hosts}" if at else hosts
    redacted = (f"{scheme}://{shown_authority}{slash}{path}"
                + (f"?{'&'.join(shown_params)}" if has_query and shown_params else ""))
    return StoreURL("postgresql", conninfo=conninfo, secrets=tuple(sorted({s for s in secrets if s})),
                    schema=schema, redacted=redacted)


def check_schema_name(schema: str) -> None:
    """Refuse (StoreError) a schema name failfirst cannot own: not a plain lower-case
    identifier, or one with a reserved prefix (:data:`RESERVED_SCHEMA_PREFIXES`)."""
    if not _SCHEMA_NAME.fullmatch(schema):
        raise StoreError(f"store URL: schema {shown(schema)} must be a lower-case identifier "
                         "(a-z, 0-9, _; at most 63 characters)")
    for prefix in RESERVED_SCHEMA_PREFIXES:
        if schema.startswith(prefix):
            owner = "PostgreSQL's" if prefix == "pg_" else "failfirst's simulation schemas'"
            raise StoreError(f"store URL: schema {shown(schema)}: the prefix {prefix} is "
                             f"reserved for {owner}")


def redact(text: str) -> str:
    """``text`` with the secrets of every postgresql:// URL in it replaced by ``***``: the
    password in the user part, and the value of every secret parameter."""
    text = re.sub(r"(postgres(?:ql)?://[^:/@\s?]*):[^@\s]*@", rf"\1:{_HIDDEN}@", text)

    def hide(match: re.Match[str]) -> str:
        secret = unquote(match.group(2)) in SECRET_PARAMETERS
        return match.group(1) + match.group(2) + "=" + (_HIDDEN if secret else match.group(3))

    return re.sub(r"([?&])([^=&\s]+)=([^&\s]*)", hide, text)
