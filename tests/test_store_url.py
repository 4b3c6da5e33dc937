"""Store URLs as libpq takes them, and never a secret shown.

libpq's own parser (``psycopg.conninfo.conninfo_to_dict``) is the reference: the URL
failfirst hands it must mean what the user's URL meant, parameter for parameter, with
only failfirst's ``schema`` taken out. Every output form (``redacted``, error lines,
``scrub`` of a driver's message) hides every credential.
"""

from __future__ import annotations

import pytest

from failfirst.cli import main
from failfirst.store import StoreError, parse_store_url
from failfirst.store.url import redact

conninfo_to_dict = pytest.importorskip("psycopg.conninfo").conninfo_to_dict


@pytest.mark.parametrize("url", [
    "postgresql:///db",  # no host: the local socket
    "postgresql://@/db?host=/var/run/postgresql",
    "postgresql://u@h/db?options=-c%20statement_timeout%3D1",  # %20 is a space to libpq; + is not
    "postgresql://h1:5432,h2:5433/db?target_session_attrs=any",
    "postgresql://[::1]:5432/db?sslmode=disable&application_name=a%20b",
    "postgres://u:p%40ss@h/db",
])
def test_the_url_reaches_libpq_as_the_user_wrote_it(url):
    parsed = parse_store_url(url)
    assert parsed.conninfo == url
    assert conninfo_to_dict(parsed.conninfo) == conninfo_to_dict(url)


def test_only_failfirsts_schema_parameter_is_taken_out():
    url = "postgresql://h/db?options=-c%20statement_timeout%3D1&schema=mine&sslmode=disable"
    parsed = parse_store_url(url)
    assert parsed.schema == "mine"
    assert parsed.conninfo == "postgresql://h/db?options=-c%20statement_timeout%3D1&sslmode=disable"
    assert conninfo_to_dict(parsed.conninfo)["options"] == "-c statement_timeout=1"


@pytest.mark.parametrize(("url", "secrets"), [
    ("postgresql://u:hunter2@h/db", ["hunter2"]),
    ("postgresql://u@h/db?password=hunter2", ["hunter2"]),
    ("postgresql://u@h/db?sslpassword=keypass&password=hunter2&schema=s", ["keypass", "hunter2"]),
    ("postgresql://u@h/db?pass%77ord=hunter2", ["hunter2"]),  # libpq decodes keys too
    ("postgresql://u:p%40ss@h/db", ["p@ss", "p%40ss"]),
    ("postgresql://u@h/db?oauth_client_secret=shh", ["shh"]),
])
def test_every_credential_is_redacted(url, secrets):
    parsed = parse_store_url(url)
    for secret in secrets:
        assert secret not in parsed.redacted
        assert secret not in str(parsed) and secret not in repr(parsed)
        assert secret not in parsed.scrub(f"FATAL: password authentication failed ({secret})")
        assert secret not in redact(f"could not reach {url}")
    assert "***" in parsed.redacted


@pytest.mark.parametrize("url", [
    "postgresql://u:pa/ss@h/db",   # an unencoded '/' in the password
    "postgresql://u:pa?ss@h/db",   # an unencoded '?'
    "postgresql://u:pa@ss@h/db",   # an unencoded '@'
    "postgresql://u:pa#ss@h/db",   # an unencoded '#'
])
def test_an_ambiguous_url_is_refused_without_echoing_it(url):
    with pytest.raises(StoreError) as refused:
        parse_store_url(url)
    assert "u:pa" not in str(refused.value) and "ss@h" not in str(refused.value)


@pytest.mark.parametrize("schema", ["pg_foo", "pg_catalog", "ff_sim_1_2_ab", "Bad", "a-b", "x" * 64,
                                    "caf\u00e9", "a%0A"])
def test_a_schema_failfirst_cannot_own_is_refused(schema):
    with pytest.raises(StoreError, match="schema"):
        parse_store_url(f"postgresql://h/db?schema={schema}")


def _refused(capsys, *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (code, out, err)
    assert err.startswith("failfirst: error: ") and err.count("\n") == 1
    return err


@pytest.mark.parametrize("argv", [["run", "1"], ["explore", "1"], ["check"], ["resume"],
                                  ["stress", "--jobs", "2", "--workers", "1"]])
def test_a_query_password_is_never_printed(capsys, argv):
    """Port 1 refuses the connection at once: the error line names the URL, redacted."""
    url = "postgresql://postgres@127.0.0.1:1/test?password=s3cretpw&sslpassword=k3ypw"
    err = _refused(capsys, *argv, "--store", url)
    assert "s3cretpw" not in err and "k3ypw" not in err and "password=***" in err


def test_a_reserved_schema_is_one_line_before_any_connection(capsys):
    err = _refused(capsys, "stress", "--jobs", "2", "--workers", "1", "--store",
                   "postgresql://postgres@127.0.0.1:1/test?schema=pg_foo")
    assert "reserved" in err


def test_redacted_keeps_everything_but_the_secrets():
    parsed = parse_store_url("postgresql://u:x@h:5/db?password=y&schema=s&sslmode=disable")
    assert parsed.redacted == "postgresql://u:***@h:5/db?password=***&schema=s&sslmode=disable"
