"""What civicfeed may connect to: the decisions against server-side request forgery.

Pure functions; fetch.py applies them to every request and every hop of a redirect, before
it connects. Only http and https are fetched. A host the operator named (a source's URL, the
WebSub hub, ``allow_hosts``) is trusted wherever it points. Any other host, such as one a
listing links to or a redirect names, must resolve to public addresses only: not loopback,
private, shared, link-local, multicast, reserved or unspecified. A name is checked by the
addresses it resolves to, so ``localhost``, ``2130706433`` and ``0x7f000001`` are all
loopback.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

__all__ = ["MAX_REDIRECTS", "address_refusal", "scheme_refusal", "trusted_hosts"]

MAX_REDIRECTS = 5
_SCHEMES = ("http", "https")


def trusted_hosts(urls: Iterable[str | None], allowed: Iterable[str] = ()) -> frozenset[str]:
    """The hosts of the operator's own URLs, and the hosts named in ``allow_hosts``."""
    hosts = {(urlsplit(url).hostname or "").lower() for url in urls if url}
    hosts.update(_bare(host) for host in allowed)
    hosts.discard("")
    return frozenset(hosts)


def _bare(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [::1] or [::1]:8080
        return host[1 : host.find("]")] if "]" in host else host
    return host.split(":")[0] if host.count(":") == 1 else host


def scheme_refusal(url: str, *, redirect: bool = False) -> str | None:
    """Why ``url`` is not fetched because of its scheme, or None."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in _SCHEMES:
        return None
    what = "a redirect to" if redirect else "the address"
    shown = f"a {scheme}: URL" if scheme else repr(url[:80])
    return f"{what} {shown} is refused: civicfeed fetches only http and https"


def address_refusal(host: str, addresses: Sequence[str]) -> str | None:
    """Why ``host``, resolving to ``addresses``, is not to be connected to, or None.

    Every address must be public: a name that resolves to a public and an internal address
    is refused too, as the connection could go to either."""
    for text in addresses:
        kind = _internal(text)
        if kind is not None:
            shown = host if host == text else f"{host} ({text})"
            return (
                f"{shown} is a {kind} address; civicfeed does not fetch internal addresses "
                "unless the host is listed in allow_hosts"
            )
    return None


def _internal(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return "unreadable"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-public", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)
