"""The hook's connection settings: base URL, API key, subuser and timeout from an Airflow connection.

Pure apart from reading the values it is given; the hook looks the connection up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import httpx

from airflow_provider_sgseg import __version__
from airflow_provider_sgseg.exceptions import SendGridConfigError, SendGridInputError, shorten

DEFAULT_BASE_URL = "https://api.sendgrid.com"
DEFAULT_TIMEOUT = 30.0
MAX_CONNECT_TIMEOUT = 10.0
# The longest timeout a connection may name: one request is bounded (an infinite or huge one
# also overflows the socket's timeout, failing every call with an OverflowError).
MAX_TIMEOUT = 3600.0
USER_AGENT = f"airflow-provider-sgseg/{__version__}"
CONN_TYPE = "sendgrid_marketing"  # Airflow < 3.2 forms prefix extras with it


@dataclass(frozen=True)
class ConnectionSettings:
    """What the hook needs from the Airflow connection (read once per hook).

    :raises SendGridConfigError: (``from_connection``) no API key, a host that is not a
        SendGrid base URL, or an ``on_behalf_of`` subuser that is not printable ASCII; the message
        names the connection and the rule, never the key.
    :raises SendGridInputError: (``from_connection``) a ``timeout`` extra that is not a positive
        number of seconds up to :data:`MAX_TIMEOUT`.
    """

    conn_id: str
    base_url: str
    api_key: str = field(repr=False)
    on_behalf_of: str | None
    timeout: float

    @classmethod
    def from_connection(
        cls, conn_id: str, host: str | None, port: int | None, password: str | None, extra: Mapping[str, Any]
    ) -> ConnectionSettings:
        api_key = _api_key(conn_id, password)
        return cls(
            conn_id=conn_id,
            base_url=_base_url(conn_id, host, port, api_key),
            api_key=api_key,
            on_behalf_of=_on_behalf_of(conn_id, _extra(extra, "on_behalf_of")),
            timeout=_timeout(conn_id, _extra(extra, "timeout")),
        )

    def client_options(self) -> dict[str, Any]:
        """``httpx.Client``/``AsyncClient`` keyword arguments: base URL, headers, timeouts."""
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        if self.on_behalf_of:
            headers["on-behalf-of"] = self.on_behalf_of
        return {
            "base_url": self.base_url,
            "headers": headers,
            "timeout": httpx.Timeout(self.timeout, connect=min(self.timeout, MAX_CONNECT_TIMEOUT)),
        }


def _api_key(conn_id: str, password: str | None) -> str:
    # Secret stores often hand back the key with a trailing newline; strip it. Anything else
    # httpx would refuse in a header, and its error would quote the whole header: key included.
    key = (password or "").strip()
    if not key:
        raise SendGridConfigError(
            f"Connection {conn_id!r} has no API key: put the SendGrid API key in its password field"
        )
    if not all("!" <= char <= "~" for char in key):
        raise SendGridConfigError(
            f"Connection {conn_id!r}: the API key in its password field must be printable ASCII "
            "without spaces or control characters (leading/trailing whitespace is stripped)"
        )
    return key


def _on_behalf_of(conn_id: str, value: Any) -> str | None:
    # Sent as the on-behalf-of header, which carries printable ASCII only: anything else would
    # fail every request (and test_connection) with a UnicodeEncodeError or an httpx error.
    subuser = str(value or "").strip()
    if not all(" " <= char <= "~" for char in subuser):
        raise SendGridConfigError(
            f"Connection {conn_id!r}: extra 'on_behalf_of' {shorten(repr(subuser), 120)} must be a "
            "subuser name in printable ASCII, without control characters"
        )
    return subuser or None


def redact(text: str, secret: str) -> str:
    """``text`` with ``secret`` (as is, or as it appears in a bytes repr) replaced by ``***``."""
    for form in (secret, repr(secret.encode("utf-8", "backslashreplace"))[2:-1]):
        if form:
            text = text.replace(form, "***")
    return text


_BASE_URL_RULE = (
    "the host must be a SendGrid API base URL such as https://api.sendgrid.com: http or https, a host "
    "name, an optional port and an optional trailing /v3, with no other path, query string, fragment "
    "or user info"
)


def _base_url(conn_id: str, host: str | None, port: int | None, api_key: str) -> str:
    """The connection's API base URL as ``scheme://host[:port]``: the one place the host is read.

    Empty: ``https://api.sendgrid.com``. No scheme: ``https://`` is added. A trailing ``/v3`` (with
    or without ``/``) is dropped, since every request path starts with it. Anything else that cannot
    be a SendGrid base URL raises :class:`SendGridConfigError` naming the connection and the rule.
    """
    text = (host or "").strip()
    if not text:
        return DEFAULT_BASE_URL
    if "://" not in text:
        text = f"https://{text}"

    def refuse(problem: str) -> NoReturn:
        raise SendGridConfigError(f"Connection {conn_id!r}: {problem}; {_BASE_URL_RULE}")

    shown = repr(redact(text, api_key))
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL:
        refuse(f"host {shown} is not a URL")
    if url.userinfo:  # never echoed: it may hold a password
        refuse("the host carries user info (the API key belongs in the password field)")
    if url.scheme not in ("http", "https"):
        refuse(f"host {shown} uses the scheme {url.scheme!r}")
    if not url.host or "%" in url.host:
        refuse(f"host {shown} has no valid host name")
    if "?" in text or "#" in text:
        refuse(f"host {shown} has a query string or fragment")
    if url.path.rstrip("/") not in ("", "/v3"):
        refuse(f"host {shown} has a path other than /v3")
    if port and url.port is None:
        url = url.copy_with(port=port)
    if url.port is not None and not 0 < url.port < 65536:
        refuse(f"port {url.port} is not between 1 and 65535")
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def _extra(extra: Mapping[str, Any], name: str) -> Any:
    # The connection form may store custom fields with Airflow's old "extra__<type>__" prefix.
    value = extra.get(name)
    if value in (None, ""):
        value = extra.get(f"extra__{CONN_TYPE}__{name}")
    return value


def _timeout(conn_id: str, value: Any) -> float:
    if value in (None, ""):
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not 0 < seconds <= MAX_TIMEOUT:
        raise SendGridInputError(
            "timeout",
            value,
            f"connection {conn_id!r}: extra 'timeout' must be a positive number of seconds, "
            f"at most {MAX_TIMEOUT:.0f}",
        )
    return seconds
