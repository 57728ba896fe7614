"""``urllib.parse.urljoin``'s result for the links pages and feeds mostly hold, without its
general parser.

urljoin parses both addresses into named tuples (after coercing their types, stripping and
checking them) and joins them back together for every link: most of the time a listing's
links take to be read. Here the base is parsed once (by urllib, and remembered), and a link
made only of characters urllib's parser treats as plain is split by one regular expression
and resolved by urljoin's own steps (RFC 3986 dot segments as urljoin removes them, empty
queries and fragments dropped as urlunsplit drops them). Anything else is urljoin's: a link with
white space or controls (which urlsplit strips or removes), ``;`` (parameters), ``[`` or ``]``
(IPv6 literals, which it checks), a scheme other than a lower-case http or https, a
network-path reference (``//host``), a host that is not ASCII (checked by NFKC), and a base
whose scheme is not http, https or none. tests/test_urls.py compares both over generated
links and every link of the test corpora.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urljoin as _urljoin
from urllib.parse import urlparse

__all__ = ["http_netloc", "urljoin"]

# A link of characters urlsplit treats as plain (it strips or removes white space and
# controls, reads ";" as the start of parameters and checks "[" and "]" as an IPv6 literal),
# split as urlsplit splits it: host up to the first "/", "?" or "#", path up to the first "?"
# or "#", query up to the first "#", fragment the rest. Absolute: a lower-case http or https
# and a host; relative: no scheme (urlsplit's test) and no host ("//").
_ABSOLUTE = re.compile(
    r"(https?)://([^\x00-\x20;\[\]/?#]+)([^\x00-\x20;\[\]?#]*)"
    r"(?:\?([^\x00-\x20;\[\]#]*))?(?:#([^\x00-\x20;\[\]]*))?\Z"
)
_RELATIVE = re.compile(
    r"(?![A-Za-z][A-Za-z0-9+.-]*:)(?!//)([^\x00-\x20;\[\]?#]*)"
    r"(?:\?([^\x00-\x20;\[\]#]*))?(?:#([^\x00-\x20;\[\]]*))?\Z"
)
_SCHEMES = frozenset({"", "http", "https"})


@lru_cache(maxsize=256)
def _base_parts(base: str) -> tuple[str, str, str, str, str] | None:
    """The base's scheme, host, path, parameters and query as urljoin reads them, or None
    where it is joined by urljoin (another scheme, or a base urllib cannot parse)."""
    try:
        scheme, netloc, path, params, query, _ = urlparse(base)
    except ValueError:
        return None
    if scheme not in _SCHEMES:
        return None
    return scheme, netloc, path, params, query


def urljoin(base: str, url: str) -> str:
    """Exactly ``urllib.parse.urljoin(base, url)``, ValueError included."""
    if not base:
        return url
    if not url:
        return base
    parts = _base_parts(base) if type(base) is str and type(url) is str else None
    if parts is None:
        return _urljoin(base, url)
    bscheme, bnetloc, bpath, bparams, bquery = parts
    absolute = _ABSOLUTE.match(url)
    if absolute is not None:
        scheme, netloc, path, query, fragment = absolute.groups()
        if not netloc.isascii():  # urlsplit checks it after NFKC
            return _urljoin(base, url)
        if scheme != bscheme:
            return url
        return _unsplit(scheme, netloc, path, query or "", fragment or "")
    relative = _RELATIVE.match(url)
    if relative is None:
        return _urljoin(base, url)
    path, query, fragment = relative.groups()
    if not path:
        if bparams:
            bpath = f"{bpath};{bparams}"
        return _unsplit(bscheme, bnetloc, bpath, query or bquery, fragment or "")
    return _unsplit(bscheme, bnetloc, _resolve(bpath, path), query or "", fragment or "")


def _resolve(bpath: str, path: str) -> str:
    """urljoin's path of ``path`` read against ``bpath`` (both not empty or the base's
    empty)."""
    if "/." not in "/" + path and "//" not in path:  # no dot segments, no empty segments
        if path[:1] == "/":
            return path
        folder = _folder(bpath)
        if folder is not None:
            return folder + path
    if path[:1] == "/":
        segments = path.split("/")
    else:
        base_parts = bpath.split("/")
        if base_parts[-1] != "":
            del base_parts[-1]
        segments = base_parts + path.split("/")
        segments[1:-1] = filter(None, segments[1:-1])
    resolved: list[str] = []
    for segment in segments:
        if segment == "..":
            if resolved:
                resolved.pop()
        elif segment != ".":
            resolved.append(segment)
    if segments[-1] in (".", ".."):
        resolved.append("")
    return "/".join(resolved) or "/"


@lru_cache(maxsize=256)
def _folder(bpath: str) -> str | None:
    """What urljoin puts before a relative path without dot or empty segments, resolved
    against ``bpath``: its folder, when that has no dot or empty segments either."""
    if not bpath:
        return "/"
    folder = bpath[: bpath.rfind("/") + 1]
    if "/." in "/" + folder or "//" in folder:
        return None
    return folder


def _unsplit(scheme: str, netloc: str, path: str, query: str, fragment: str) -> str:
    """urlunsplit, for the schemes joined here (http and https, which have a host, or
    none)."""
    if netloc or (scheme and path[:2] != "//"):
        if path and path[:1] != "/":
            path = "/" + path
        path = "//" + netloc + path
    if scheme:
        path = scheme + ":" + path
    if query:
        path = path + "?" + query
    if fragment:
        path = path + "#" + fragment
    return path


def http_netloc(url: str) -> str | None:
    """The host part (``netloc``) of an http or https URL that urlsplit reads without a
    check (see urljoin), as urlsplit gives it; None for any other URL."""
    found = _ABSOLUTE.match(url)
    if found is None or not found.group(2).isascii():
        return None
    return found.group(2)
