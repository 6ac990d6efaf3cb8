"""POST to an address checked beforehand, never to what a second DNS lookup says.

`requests.post(url)` resolves the host again after our check: a name answering a public
address first and 127.0.0.1 second (DNS rebinding) would receive the request on loopback.
Here the connection goes to one of the addresses the check vetted, with the URL's host name
kept where it matters: the `Host` header, TLS's SNI and the certificate's host name check.
urllib3's public pool parameters (`server_hostname`, `assert_hostname`) do it.
"""

import functools
import ipaddress
import os
import ssl
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError


class PinnedRequestError(Exception):
    """No vetted address answered: the connection failed, timed out or TLS refused it."""


@functools.cache
def _tls_context(cert_file: str | None) -> ssl.SSLContext:
    # The system's authorities, and SSL_CERT_FILE's when set (docs/configuration.md), loaded
    # once per process and file: loading a CA bundle costs about 0.1 s.
    return ssl.create_default_context(cafile=cert_file) if cert_file else ssl.create_default_context()


def post(
    url: str,
    *,
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
    body: bytes,
    headers: dict[str, str],
    timeout: float,
) -> int:
    """POST `body` to `url` through the first of `addresses` that answers; its HTTP status.
    Redirects are not followed (they could lead to an address we refuse)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = port == (443 if secure else 80)
    host_header = (f"[{host}]" if ":" in host else host) + ("" if default_port else f":{port}")
    last_error: Exception | None = None
    for address in addresses:
        options = {"timeout": urllib3.Timeout(connect=timeout, read=timeout), "retries": False, "maxsize": 1}
        if secure:
            pool = urllib3.HTTPSConnectionPool(
                str(address),
                port,
                server_hostname=host,
                assert_hostname=host,
                ssl_context=_tls_context(os.environ.get("SSL_CERT_FILE")),
                **options,
            )
        else:
            pool = urllib3.HTTPConnectionPool(str(address), port, **options)
        try:
            response = pool.urlopen(
                "POST",
                target,
                body=body,
                headers={**headers, "Host": host_header},
                redirect=False,
                preload_content=True,
            )
            return response.status
        except HTTPError as exc:
            last_error = exc
        finally:
            pool.close()
    raise PinnedRequestError(type(last_error).__name__ if last_error else "no address") from last_error
