"""Passwords never leave the catalog layer: masking of libpq URLs and conninfo strings."""

from __future__ import annotations

import platformdirs
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from npztui.catalog import default_catalog_path, mask_url
from npztui.catalog.util import scrub, url_secrets


def test_uri_password_is_masked_and_the_rest_kept() -> None:
    url = "postgresql://alice:s3cr%40tPW@db.example.org:5433/catalog?sslmode=require"
    masked = mask_url(url)
    assert masked == "postgresql://alice:***@db.example.org:5433/catalog?sslmode=require"
    assert "s3cr" not in masked


def test_password_in_query_and_sslpassword_are_masked() -> None:
    url = "postgres:///cat?host=/run/pg&password=hunter22&sslpassword=keypass9&application_name=x"
    masked = mask_url(url)
    assert "hunter22" not in masked and "keypass9" not in masked
    assert "host=/run/pg" in masked and "application_name=x" in masked


def test_keyword_value_conninfo_is_masked_including_quoted_values() -> None:
    conninfo = "host=db user=alice password='pa ss\\'word' dbname=cat"
    masked = mask_url(conninfo)
    assert masked == "host=db user=alice password=*** dbname=cat"
    assert mask_url("password=plain host=h") == "password=*** host=h"
    assert mask_url("host=h PASSWORD = Xyz123") == "host=h PASSWORD = ***"


def test_urls_without_password_are_unchanged() -> None:
    for url in ("postgresql://alice@db/cat", "postgresql:///cat?host=/tmp", "host=/tmp dbname=cat",
                "postgresql://db.example/cat"):
        assert mask_url(url) == url


def test_empty_conninfo_means_libpq_environment() -> None:
    assert mask_url("") == "(libpq environment)"
    assert mask_url(None) == ""


def test_scrub_removes_raw_and_decoded_passwords_from_messages() -> None:
    url = "postgresql://bob:p%40ss9w0rd@h/db"
    assert set(url_secrets(url)) >= {"p%40ss9w0rd", "p@ss9w0rd"}
    msg = 'FATAL: password "p@ss9w0rd" rejected for postgresql://bob:p%40ss9w0rd@h/db'
    cleaned = scrub(msg, url)
    assert "p@ss9w0rd" not in cleaned and "p%40ss9w0rd" not in cleaned


_secret = st.text(
    alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$()*+,;"),
    min_size=6, max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(secret=_secret)
def test_masking_never_leaks_the_password(secret: str) -> None:
    assume(secret not in "postgresql://user@hostname:5432/dbname?sslmode=prefer host=hostname user=user dbname=dbname")
    forms = [
        f"postgresql://user:{secret}@hostname:5432/dbname?sslmode=prefer",
        f"postgresql:///dbname?host=hostname&password={secret}",
        f"host=hostname user=user password={secret} dbname=dbname",
        f"host=hostname password='{secret}' dbname=dbname",
    ]
    for form in forms:
        assert secret not in mask_url(form), form
        assert secret not in scrub(f"error near {secret} in {form}", form)


def test_default_catalog_path_is_in_the_user_data_dir() -> None:
    path = default_catalog_path()
    assert path == platformdirs.user_data_path("npztui") / "catalog.sqlite3"
