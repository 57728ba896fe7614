"""The fast path for plain feeds: RSS 2.0, RSS 1.0 and Atom 1.0 read with lxml.

It reads what feedparser would read from a document, for the fields civicfeed uses, in
feedparser's shape: per entry ``title`` with ``title_detail`` (its ``type``), ``link``,
``id``, ``published``/``updated``/``created`` with their ``*_parsed`` struct_time,
``summary`` with ``summary_detail``, ``content`` (a list of ``{"type", "value"}``); for the
feed ``title``, ``link`` and ``language``. The conversion in feed.py consumes these exactly
as it consumes feedparser's dictionaries (looked up with ``dict.get``).

It reads only what it fully understands and raises NotUnderstood for anything else, so
that feedparser reads the document as before: a document that is not well-formed (lxml's
recover is off), any encoding but UTF-8 declared consistently, any DOCTYPE, xml:base, an
element it has no rule for, markup inside a text element, an HTML title with markup or
references, and HTML in a summary that feedparser's sanitiser and civicfeed's would not
read alike (see _html_is_plain). Where feedparser resolves relative links in summaries
and sanitises them, this path hands over the HTML as written: civicfeed's own sanitiser
(normalise) resolves against the same address and removes the same things, which the
corpus test proves for every document this path reads.

lxml parses with entities unresolved, no DTD, no network, no huge trees; a document with a
DOCTYPE is never parsed here (libxml2 would still open an external DTD it names). The date
parser is the caller's (feed.py passes feedparser's), so that the dates are feedparser's own.

fastfeedparser (lxml-based, MIT, actively released) was measured on the same corpus
documents (33 ms against this path's 115 ms and feedparser's 626 ms for 143 documents) and
not used: it always parses with recover on, takes no document address (relative links stay
relative), gives other links for 215 of 1030 entries, and no dates in feedparser's form.
"""

from __future__ import annotations

import enum
import html.entities
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from ..urls import urljoin

__all__ = ["FastFeed", "NotUnderstood", "read"]

DateParser = Callable[[str], time.struct_time | None]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


class NotUnderstood(Exception):
    """The fast path gives the document up. ``reason`` is a short kind (for counting),
    ``detail`` says where."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class FastFeed:
    version: str  # feedparser's name: "rss20", "rss10" or "atom10"
    feed: dict[str, Any]
    entries: list[dict[str, Any]] = field(default_factory=list)


# --- the parser ------------------------------------------------------------------------------


class _NothingExternal(etree.Resolver):
    """libxml2 still opens an external DTD named by a DOCTYPE (a local file even with
    no_network): every such load is refused."""

    def resolve(self, system_url: str, public_id: str, context: object = None) -> Any:
        raise NotUnderstood("doctype", f"external {system_url}")


class _Parsers(threading.local):
    def __init__(self) -> None:
        self.xml = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            recover=False,
            collect_ids=False,
        )
        self.xml.resolvers.add(_NothingExternal())


_PARSERS = _Parsers()

# --- namespaces and elements, as feedparser names them ---------------------------------------

_ATOM = "http://www.w3.org/2005/atom"
_RSS10 = "http://purl.org/rss/1.0/"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_XML = "http://www.w3.org/XML/1998/namespace"
_XHTML = "http://www.w3.org/1999/xhtml"
# feedparser's mixin.namespaces (lower-case namespace -> its prefix) for the extensions;
# the feed formats' own namespaces are "" there, and only these three are read here
_OWN = {"", _ATOM, _RSS10}
_PREFIXES = {
    "http://webns.net/mvcb/": "admin",
    "http://purl.org/rss/1.0/modules/aggregation/": "ag",
    "http://purl.org/rss/1.0/modules/annotate/": "annotate",
    "http://media.tangent.org/rss/1.0/": "audio",
    "http://backend.userland.com/blogchannelmodule": "blogChannel",
    "http://creativecommons.org/ns#license": "cc",
    "http://web.resource.org/cc/": "cc",
    "http://cyber.law.harvard.edu/rss/creativecommonsrssmodule.html": "creativeCommons",
    "http://backend.userland.com/creativecommonsrssmodule": "creativeCommons",
    "http://purl.org/rss/1.0/modules/company": "co",
    "http://purl.org/rss/1.0/modules/content/": "content",
    "http://my.theinfo.org/changed/1.0/rss/": "cp",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://purl.org/dc/terms/": "dcterms",
    "http://purl.org/rss/1.0/modules/email/": "email",
    "http://purl.org/rss/1.0/modules/event/": "ev",
    "http://rssnamespace.org/feedburner/ext/1.0": "feedburner",
    "http://freshmeat.net/rss/fm/": "fm",
    "http://xmlns.com/foaf/0.1/": "foaf",
    "http://www.w3.org/2003/01/geo/wgs84_pos#": "geo",
    "http://www.georss.org/georss": "georss",
    "http://www.opengis.net/gml": "gml",
    "http://postneo.com/icbm/": "icbm",
    "http://purl.org/rss/1.0/modules/image/": "image",
    "http://www.itunes.com/dtds/podcast-1.0.dtd": "itunes",
    "http://example.com/dtds/podcast-1.0.dtd": "itunes",
    "http://purl.org/rss/1.0/modules/link/": "l",
    "http://search.yahoo.com/mrss": "media",
    "http://search.yahoo.com/mrss/": "media",
    "http://madskills.com/public/xml/rss/module/pingback/": "pingback",
    "http://prismstandard.org/namespaces/1.2/basic/": "prism",
    _RDF: "rdf",
    "http://www.w3.org/2000/01/rdf-schema#": "rdfs",
    "http://purl.org/rss/1.0/modules/reference/": "ref",
    "http://purl.org/rss/1.0/modules/richequiv/": "reqv",
    "http://purl.org/rss/1.0/modules/search/": "search",
    "http://purl.org/rss/1.0/modules/slash/": "slash",
    "http://schemas.xmlsoap.org/soap/envelope/": "soap",
    "http://purl.org/rss/1.0/modules/servicestatus/": "ss",
    "http://hacks.benhammersley.com/rss/streaming/": "str",
    "http://purl.org/rss/1.0/modules/subscription/": "sub",
    "http://purl.org/rss/1.0/modules/syndication/": "sy",
    "http://schemas.pocketsoap.com/rss/mydescmodule/": "szf",
    "http://purl.org/rss/1.0/modules/taxonomy/": "taxo",
    "http://purl.org/rss/1.0/modules/threading/": "thr",
    "http://purl.org/rss/1.0/modules/textinput/": "ti",
    "http://madskills.com/public/xml/rss/module/trackback/": "trackback",
    "http://wellformedweb.org/commentapi/": "wfw",
    "http://purl.org/rss/1.0/modules/wiki/": "wiki",
    _XHTML: "xhtml",
    "http://www.w3.org/1999/xlink": "xlink",
    _XML.lower(): "xml",
    "http://podlove.org/simple-chapters": "psc",
}
# feedparser's other "" namespaces (RSS 0.90, Userland, Atom 0.3, Echo ...): not read here
_OTHER_OWN = {
    "http://backend.userland.com/rss",
    "http://blogs.law.harvard.edu/tech/rss",
    "http://my.netscape.com/rdf/simple/0.9/",
    "http://example.com/newformat#",
    "http://example.com/necho",
    "http://purl.org/echo/",
    "uri/of/echo/namespace#",
    "http://purl.org/pie/",
    "http://purl.org/atom/ns#",
    "http://purl.org/rss/1.0/modules/rss091#",
}
# Every element feedparser has a handler for (its _start_/_end_ methods, prefix_localname).
# An element with a handler is read here only if its rule is below; one without a handler
# feedparser stores under its own name, which civicfeed never reads.
FEEDPARSER_HANDLERS = _words(
    "abstract author body category cc_license channel cloud content content_encoded "
    "contributor copyright created creativeCommons_license creativecommons_license "
    "dc_author dc_contributor dc_creator dc_date dc_description dc_language dc_publisher "
    "dc_rights dc_subject dc_title dcterms_created dcterms_issued dcterms_modified "
    "dcterms_valid description email enclosure entry expirationdate feed "
    "feedburner_browserfriendly fullitem generator geom georss_box georss_line georss_point "
    "georss_polygon georss_where georssgeom gml_exterior gml_linearring gml_linestring "
    "gml_point gml_polygon gml_pos gml_poslist guid height homepage id image info issued "
    "item itunes_author itunes_block itunes_category itunes_email itunes_explicit "
    "itunes_image itunes_keywords itunes_link itunes_name itunes_owner itunes_subtitle "
    "itunes_summary keywords language lastbuilddate link managingeditor media_category "
    "media_content media_credit media_description media_group media_keywords media_license "
    "media_player media_rating media_restriction media_thumbnail media_title modified name "
    "newlocation psc_chapter psc_chapters pubdate published rights rss source subtitle "
    "summary tagline tags textInput textinput title updated uri url webmaster where width "
    "xhtml_body"
)
# the keys of an entry civicfeed reads (an element without a handler named so would write one)
_READ_KEYS = {
    "title",
    "title_detail",
    "link",
    "links",
    "id",
    "guidislink",
    "published",
    "published_parsed",
    "updated",
    "updated_parsed",
    "created",
    "created_parsed",
    "summary",
    "summary_detail",
    "content",
    "description",
}

# What feedparser makes of an element inside an entry, by handler name.
_TITLE = {"title", "dc_title", "media_title"}
_LINK = {"link"}
_GUID = {"guid", "id"}
_DATES = {
    "pubdate": "published",
    "published": "published",
    "issued": "published",
    "dcterms_issued": "published",
    "updated": "updated",
    "modified": "updated",
    "dc_date": "updated",
    "dcterms_modified": "updated",
    "created": "created",
    "dcterms_created": "created",
}
_DESCRIPTION = {"description", "dc_description", "media_description"}
_SUMMARY = {"summary", "itunes_summary"}
_CONTENT = {"content"}
_CONTENT_ENCODED = {"content_encoded"}
_SOURCE = {"source"}
# Handlers that write only keys civicfeed does not read (authors, tags, enclosures, media,
# podcast details, rights); the same holds for their children when these are inert too.
_INERT = {
    "author",
    "name",
    "email",
    "uri",
    "url",
    "contributor",
    "category",
    "keywords",
    "enclosure",
    "rights",
    "copyright",
    "expirationdate",
    "dc_creator",
    "dc_author",
    "dc_subject",
    "dc_publisher",
    "dc_rights",
    "dc_language",
    "dc_contributor",
    "dcterms_valid",
    "itunes_author",
    "itunes_block",
    "itunes_category",
    "itunes_email",
    "itunes_explicit",
    "itunes_image",
    "itunes_keywords",
    "itunes_name",
    "itunes_owner",
    "itunes_subtitle",
    "media_category",
    "media_content",
    "media_credit",
    "media_group",
    "media_keywords",
    "media_license",
    "media_player",
    "media_rating",
    "media_restriction",
    "media_thumbnail",
}
# Feed level: only title, link, language and id are read; entries and content there are
# not understood (feedparser's state carries over into the entries).
_FEED_NOT_UNDERSTOOD = {"content", "content_encoded", "fullitem", "source", "body", "xhtml_body"}


# --- text as feedparser finishes it (mixin.pop) ----------------------------------------------

_URIFIXER = re.compile("^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")
_LINK_REFERENCE = re.compile("&([A-Za-z0-9_]+);")
_C1_UTF8 = re.compile(b"\xc2[\x80-\x9f]")
# feedparser maps the C1 controls to the characters windows-1252 has at those bytes
_CP1252 = {
    code: bytes([code]).decode("cp1252")
    for code in range(0x80, 0xA0)
    if code not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
}
_HTML_TYPES = {"text/html", "application/xhtml+xml"}


def _has_c1(text: str) -> bool:
    """Whether ``text`` holds a C1 control (U+0080 to U+009F), told from its UTF-8, where
    each is the byte C2 and one of 80 to 9F: a search of the bytes for C2 first, which most
    text lacks, instead of a search of its characters (three times slower)."""
    data = text.encode("utf-8", "surrogatepass")
    return b"\xc2" in data and _C1_UTF8.search(data) is not None


def _urljoin(base: str, uri: str) -> str:
    """feedparser's urls._urljoin."""
    if ":///" in uri:  # what the fixer changes: slashes beyond two after a scheme
        uri = _URIFIXER.sub(r"\1\3", uri)
    try:
        return urljoin(base, uri)
    except ValueError:
        return ""


def _content_type(value: str) -> str:
    value = value.lower()
    if value in ("text", "plain"):
        return "text/plain"
    if value == "html":
        return "text/html"
    if value == "xhtml":
        return "application/xhtml+xml"
    return value


# feedparser's sanitizer.acceptable_elements, for its guess whether RSS text is HTML
_FEEDPARSER_HTML_ELEMENTS = _words(
    "a abbr acronym address area article aside audio b big blockquote br button canvas "
    "caption center cite code col colgroup command datagrid datalist dd del details dfn "
    "dialog dir div dl dt em event-source fieldset figcaption figure font footer form h1 h2 "
    "h3 h4 h5 h6 header hr i img input ins kbd keygen label legend li m map menu meter "
    "multicol nav nextid noscript ol optgroup option output p pre progress q s samp section "
    "select small sound source spacer span strike strong sub sup table tbody td textarea "
    "tfoot th thead time tr tt u ul var video"
)
_CLOSE_TAG = re.compile(r"</(\w+)>")
_ANY_REFERENCE = re.compile(r"&#?\w+;")
_TAG_NAME = re.compile(r"</?(\w+)")
_NAMED_REFERENCE = re.compile(r"&(\w+);")


def _looks_like_html(text: str) -> bool:
    """feedparser's mixin.looks_like_html."""
    if "<" not in text and "&" not in text:  # neither a closing tag nor a reference
        return False
    if not (_CLOSE_TAG.search(text) or _ANY_REFERENCE.search(text)):
        return False
    if any(t.lower() not in _FEEDPARSER_HTML_ELEMENTS for t in _TAG_NAME.findall(text)):
        return False
    return all(e in html.entities.entitydefs for e in _NAMED_REFERENCE.findall(text))


# --- HTML that both sanitisers read alike ----------------------------------------------------

# Kept by feedparser's sanitiser and by civicfeed's (nh3 with normalise's tag list).
_KEPT_BY_BOTH = _words(
    "a abbr acronym article aside b blockquote br caption center cite code col colgroup dd "
    "del details dfn div dl dt em figcaption figure footer h1 h2 h3 h4 h5 h6 header hr i "
    "img ins kbd li ol p pre q s samp small span strike strong sub sup table tbody td th "
    "thead time tr tt u ul var"
)
# Removed with their text kept by both (feedparser keeps some of them, nh3 then removes the
# tag and keeps the text); removed with their content by both: none are let through here.
_UNWRAPPED_BY_BOTH = _words(
    "big map area nav font address section label legend fieldset dir menu tfoot o:p html body"
)
_SAFE_TAGS = _KEPT_BY_BOTH | _UNWRAPPED_BY_BOTH
# attributes whose values feedparser resolves or checks as URLs
_URL_ATTRIBUTES = _words(
    "href src cite longdesc usemap action background profile classid codebase data poster"
)
_VOID = _words(
    "area base basefont br col command embed frame hr img input isindex keygen link meta "
    "param source track wbr"
)
_PLAIN_TAG = re.compile(r"</?([A-Za-z][A-Za-z0-9]*)>")
_TAG = re.compile(
    r"""<(/?)([A-Za-z][-.A-Za-z0-9:_]*)((?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*)\s*(/?)>"""
)
_ATTRIBUTE = re.compile(r"""([^\s"'>/=]+)(\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?""")
_COMMENT = re.compile(r"<!--(?:[^-]|-(?!-))*-->")
_AMPERSAND = re.compile(
    r"&(?:#([0-9]{1,7});|#[xX]([0-9a-fA-F]{1,6});|([A-Za-z][A-Za-z0-9]*);|(?![A-Za-z#]))"
)
_SHORT_TAG = re.compile(r"<([^<>\s]+?)\s*/>")
_ABSOLUTE_URL = re.compile(r"(?:https?|mailto):[^\s\x00-\x1f\x7f\\]+\Z")
# a relative reference that urljoin and nh3's URL parser resolve alike: no scheme, no
# characters either would escape, no empty query or fragment, escapes well-formed
_RELATIVE_URL = re.compile(
    r"(?![A-Za-z][A-Za-z0-9+.-]*:)(?:[A-Za-z0-9._~!$&'()*+,;=:@/?#-]|%[0-9A-Fa-f]{2})+\Z"
)


def _references_plain(text: str) -> bool:
    """Every '&' starts a reference both sanitisers decode alike, or none at all."""
    position = text.find("&")
    while position != -1:
        match = _AMPERSAND.match(text, position)
        if match is None:
            return False
        decimal, hexadecimal, name = match.groups()
        if name is not None and name not in html.entities.name2codepoint and name != "apos":
            return False
        number = int(decimal) if decimal else int(hexadecimal, 16) if hexadecimal else None
        if number is not None and (number < 32 and number not in (9, 10, 13)):
            return False
        if number is not None and (0xD800 <= number <= 0xDFFF or number > 0x10FFFF):
            return False
        position = text.find("&", position + 1)
    return True


# The usual summary, told in a few scans: its only references '&amp;', '&lt;', '&gt;',
# '&quot;' and '&nbsp;', and every '<' the start of a tag of _SAFE_TAGS without attributes
# or of a link written <a href='...'> or <a href="..."> whose address holds no quote, angle
# bracket, '&' or white space. Every construct the walk below refuses is left out: other
# references, comments, declarations, and short tags (what _SHORT_TAG finds starts at a '<'
# with no white space or '>' before its '/>', which no such tag has), so that such a
# fragment is plain exactly when each of its addresses is (_url_not_plain).
_UNUSUAL_REFERENCE = re.compile(r"&(?!amp;|lt;|gt;|quot;|nbsp;)")
_USUAL_TAG = re.compile(
    r"""<(?:a href=(?:'([^'"<>&\s]*)'|"([^'"<>&\s]*)")>|/?([A-Za-z][A-Za-z0-9]*)>)"""
)


def _usual_addresses(fragment: str) -> list[str] | None:
    """The link addresses of a fragment of the usual shape above, None for any other."""
    if _UNUSUAL_REFERENCE.search(fragment) is not None:
        return None
    # the tags found hold no '<' but their first: as many as there are '<', one starts at each
    tags = _USUAL_TAG.findall(fragment)
    if len(tags) != fragment.count("<"):
        return None
    addresses = []
    for single, double, name in tags:
        if not name:  # a link
            addresses.append(single or double)
        elif name.lower() not in _SAFE_TAGS:
            return None
    return addresses


def _html_not_plain(fragment: str, base: str) -> str | None:
    """Why feedparser's relative-link resolver and sanitiser followed by nh3 could give
    other HTML than nh3 alone, or None: only tags both keep (or both unwrap), references
    both decode alike, absolute URLs feedparser leaves as they are, no constructs its
    preprocessing rewrites (short tags of non-void elements, '&#39;', '&#34;',
    declarations, processing instructions)."""
    addresses = _usual_addresses(fragment)
    if addresses is not None:
        for url in addresses:
            problem = _url_not_plain(url, base)
            if problem:
                return problem
        return None
    if "/>" in fragment:  # what every short tag ends with
        for match in _SHORT_TAG.finditer(fragment):
            if match.group(1) not in _VOID:
                return f"short tag <{match.group(1)}/>"
    if not _references_plain(fragment):
        return "reference"
    start = fragment.find("<")
    while start != -1:
        if fragment.startswith("<!--", start):
            comment = _COMMENT.match(fragment, start)
            if comment is None:
                return "comment"
            start = fragment.find("<", comment.end())
            continue
        plain = _PLAIN_TAG.match(fragment, start)
        if plain is not None:  # most tags: no attributes, read by _TAG as they are
            if plain.group(1).lower() not in _SAFE_TAGS:
                return f"tag <{plain.group(1).lower()}>"
            start = fragment.find("<", plain.end())
            continue
        following = fragment[start + 1 : start + 2]
        if following == "/" or following.isalpha():
            tag = _TAG.match(fragment, start)
            if tag is None:
                return "tag syntax"
            if "&#39;" in tag.group(0) or "&#34;" in tag.group(0):
                return "&#39; or &#34; in a tag"
            if tag.group(2).lower() not in _SAFE_TAGS:
                return f"tag <{tag.group(2).lower()}>"
            problem = _attributes_not_plain(tag.group(3), base)
            if problem:
                return problem
            start = fragment.find("<", tag.end())
            continue
        if following in ("!", "?"):
            return "declaration"
        start = fragment.find("<", start + 1)
    return None


def _attributes_not_plain(attributes: str, base: str) -> str | None:
    for name, assigned, double, single, bare in _ATTRIBUTE.findall(attributes):
        if not assigned:
            return "attribute without a value"  # feedparser gives it its name as value
        value = double or single or bare
        if name.lower() in _URL_ATTRIBUTES:
            problem = _url_not_plain(html.unescape(value), base)
            if problem:
                return problem
    return None


def _url_not_plain(url: str, base: str) -> str | None:
    """Why feedparser and nh3 could resolve the address of an attribute (its references
    decoded) differently, or None."""
    if _ABSOLUTE_URL.match(url):
        if _urljoin(base, url) != url:
            return "URL feedparser rewrites"
    elif (
        not _RELATIVE_URL.match(url)
        or url[-1] in "?#"
        or "?#" in url
        or "//" in url[1:]  # nh3's URL parser folds an empty path segment
    ):
        return "unusual URL"
    return None


# --- reading ---------------------------------------------------------------------------------

_XML_DECLARATION = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([^"']+)["']""")
_UTF8 = {"utf-8", "utf8"}
_XML_APPLICATION_TYPES = {
    "application/xml",
    "application/xml-dtd",
    "application/xml-external-parsed-entity",
}
_XML_TEXT_TYPES = {"text/xml", "text/xml-external-parsed-entity"}


def _check_encoding(content: bytes, headers: Mapping[str, str]) -> None:
    """The document is UTF-8, by feedparser's rules (RFC 3023) and by its own declaration,
    and feedparser has no cause to flag it (an XML media type)."""
    media, _, parameters = headers.get("content-type", "").partition(";")
    media = media.strip().lower()
    charset = ""
    for parameter in parameters.split(";"):
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("'\"").lower()
    body = content[3:] if content.startswith(b"\xef\xbb\xbf") else content
    if body[:2] in (b"\xfe\xff", b"\xff\xfe") or b"\x00" in body[:4] or body[:1] == b"\x4c":
        raise NotUnderstood("encoding", "UTF-16, UTF-32 or EBCDIC")
    declared = _XML_DECLARATION.match(body)
    declaration = declared.group(1).decode("ascii", "replace").lower() if declared else ""
    is_application = media in _XML_APPLICATION_TYPES or (
        media.startswith("application/") and media.endswith("+xml")
    )
    is_text = media in _XML_TEXT_TYPES or (media.startswith("text/") and media.endswith("+xml"))
    if not (is_application or is_text):
        raise NotUnderstood("media type", media or "none")
    if is_text and not charset:
        raise NotUnderstood("encoding", f"{media} without charset (US-ASCII by RFC 3023)")
    if charset and charset not in _UTF8:
        raise NotUnderstood("encoding", f"charset {charset}")
    if declaration and declaration not in _UTF8:
        raise NotUnderstood("encoding", f"declared {declaration}")


def _base(headers: Mapping[str, str]) -> str:
    """The address feedparser resolves relative links against: Content-Location."""
    base = headers.get("content-location", "")
    if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).netloc:
        raise NotUnderstood("address", f"no absolute http(s) address: {base!r}")
    if _urljoin(base, base) != base:
        raise NotUnderstood("address", f"feedparser would rewrite {base!r}")
    return base


def read(content: bytes, headers: Mapping[str, str], parse_date: DateParser) -> FastFeed:
    """feedparser's reading of a plain RSS 2.0, RSS 1.0 or Atom 1.0 document, or
    NotUnderstood. ``headers`` are the response's (lower-case names), with
    ``content-location`` the document's address."""
    _check_encoding(content, headers)
    base = _base(headers)
    if b"<!DOCTYPE" in content:  # never parsed here: no DTD is read, no entity declared
        raise NotUnderstood("doctype")
    try:
        root = etree.fromstring(content, parser=_PARSERS.xml)
    except etree.XMLSyntaxError as exc:
        raise NotUnderstood("not well-formed", str(exc)) from None
    docinfo: Any = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise NotUnderstood("doctype")
    if (docinfo.encoding or "utf-8").lower() not in _UTF8:
        raise NotUnderstood("encoding", f"parsed as {docinfo.encoding}")
    return _Reader(base, parse_date).document(root)


def _split(tag: Any) -> tuple[str, str]:
    if not isinstance(tag, str):
        return "#", ""  # comment or processing instruction
    return _split_name(tag)


@lru_cache(maxsize=4096)
def _split_name(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace.lower(), local.lower()
    return "", tag.lower()


class _Act(enum.Enum):
    """What _entry does with an element of an entry, by its key (_entry_action)."""

    INERT = enum.auto()
    TITLE = enum.auto()
    LINK = enum.auto()
    GUID = enum.auto()
    DATE = enum.auto()
    SUMMARY = enum.auto()
    CONTENT = enum.auto()
    CONTENT_ENCODED = enum.auto()
    SOURCE = enum.auto()
    OTHER = enum.auto()  # not understood


_ENTRY_ACTIONS: dict[str, _Act] = {}


def _entry_action(key: str) -> _Act:
    """What _entry does with an element named ``key`` (the first of its rules that names
    it), kept for the keys seen; NotUnderstood for a key civicfeed reads without a handler
    (_Reader._generic)."""
    if key in _INERT or _Reader._generic(key):
        action = _Act.INERT
    elif key in _TITLE:
        action = _Act.TITLE
    elif key in _LINK:
        action = _Act.LINK
    elif key in _GUID:
        action = _Act.GUID
    elif key in _DATES:
        action = _Act.DATE
    elif key in _DESCRIPTION or key in _SUMMARY:
        action = _Act.SUMMARY
    elif key in _CONTENT:
        action = _Act.CONTENT
    elif key in _CONTENT_ENCODED:
        action = _Act.CONTENT_ENCODED
    elif key in _SOURCE:
        action = _Act.SOURCE
    else:
        action = _Act.OTHER
    if len(_ENTRY_ACTIONS) < _KNOWN_KEYS_KEPT:
        _ENTRY_ACTIONS[key] = action
    return action


class _Reader:
    def __init__(self, base: str, parse_date: DateParser) -> None:
        self.base = base
        self.parse_date = parse_date
        self.version = ""

    # - structure -

    def document(self, root: etree._Element) -> FastFeed:
        namespace, local = _split(root.tag)
        self._check_tree(root)
        if local == "rss" and namespace == "":
            if not root.get("version", "").startswith("2."):
                raise NotUnderstood("version", f"rss {root.get('version')!r}")
            self.version = "rss20"
            channels = [c for c in root if _split(c.tag) == ("", "channel")]
            others = [c for c in root if isinstance(c.tag, str) and c not in channels]
            if len(channels) != 1 or others:
                raise NotUnderstood("structure", "rss without exactly one channel")
            return self._feed(channels[0], list(channels[0]), "item")
        if local == "rdf" and namespace == _RDF:
            self.version = "rss10"
            if root.nsmap.get(None, "").lower() != _RSS10 and not any(
                v.lower() == _RSS10 for v in root.nsmap.values()
            ):
                raise NotUnderstood("version", "RDF without the RSS 1.0 namespace")
            channels = [c for c in root if _split(c.tag) == (_RSS10, "channel")]
            if len(channels) != 1:
                raise NotUnderstood("structure", "RSS 1.0 without exactly one channel")
            elements = [c for c in root if isinstance(c.tag, str)]
            if elements[0] is not channels[0]:
                raise NotUnderstood("structure", "RSS 1.0 channel after its items")
            children = list(channels[0]) + [c for c in root if c is not channels[0]]
            return self._feed(channels[0], children, "item")
        if local == "feed" and namespace == _ATOM:
            self.version = "atom10"
            return self._feed(root, list(root), "entry")
        raise NotUnderstood("version", f"root element {root.tag}")

    def _check_tree(self, root: etree._Element) -> None:
        # a prefix the document binds to a namespace feedparser knows under another name:
        # feedparser would read an unknown namespace's element with that prefix as that one's
        remapped = {
            prefix.lower()
            for prefix, uri in root.nsmap.items()
            if prefix and _PREFIXES.get(uri.lower(), prefix).lower() != prefix.lower()
        }
        for element in root.iter():
            tag = element.tag
            if tag is etree.Entity:
                raise NotUnderstood("entity", str(element))
            if not isinstance(tag, str):
                continue
            key = _KNOWN_KEYS.get(tag) or _known_key(tag)
            if not key:  # a namespace feedparser does not know, or one not read here
                namespace, local = _split(tag)
                if namespace in _OTHER_OWN or namespace == _XHTML:
                    raise NotUnderstood("namespace", namespace)
                unknown = namespace not in _OWN and namespace not in _PREFIXES
                if unknown and (element.prefix or "").lower() in remapped:
                    raise NotUnderstood("namespace", f"{namespace} as {element.prefix}")
                key = _key_of(tag, element.prefix)
            for name in element.keys():  # noqa: SIM118 - a list, without the attributes' proxy
                if name == f"{{{_XML}}}base" or name.lower() == "base":
                    raise NotUnderstood("xml:base")
            if key in ("item", "entry"):
                local = _split(tag)[1]
                parent = element.getparent()
                parent_local = _split(parent.tag)[1] if parent is not None else ""
                if parent_local not in ("channel", "feed", "rdf"):
                    raise NotUnderstood("structure", f"<{local}> inside <{parent_local}>")

    @staticmethod
    def _key(element: etree._Element) -> str | None:
        """feedparser's name for an element (its handler's, in lower case), None for comments.
        An element in a namespace feedparser does not know is named by the prefix it is
        written with, or by its local name alone (as if it were the feed's own) without one."""
        tag = element.tag
        if not isinstance(tag, str):
            return None
        return _known_key(tag) or _key_of(tag, element.prefix)

    @staticmethod
    def _generic(key: str) -> bool:
        """An element feedparser has no handler for: stored under its own name."""
        if key in FEEDPARSER_HANDLERS:
            return False
        if key in _READ_KEYS:
            raise NotUnderstood("element", f"{key} without a handler")
        return True

    def _feed(self, channel: etree._Element, children: list[Any], entry_tag: str) -> FastFeed:
        feed: dict[str, Any] = {}
        entries: list[dict[str, Any]] = []
        language = channel.get(f"{{{_XML}}}lang")
        if self.version == "atom10" and language:
            feed["language"] = language.replace("_", "-")
        title_done = False
        # feedparser's hasContent: set by content at the feed level too, and only cleared at
        # the end of an entry, so that it changes how the first entry's summaries are read
        has_summary = has_content = False
        for child in children:
            key = self._key(child)
            if key is None:
                continue
            if key in ("item", "entry"):
                entries.append(self._entry(child, has_content))
                has_content = False
                continue
            for descendant in child.iterdescendants():
                if self._key(descendant) in _FEED_NOT_UNDERSTOOD | _SUMMARY:
                    raise NotUnderstood("structure", f"<{self._key(descendant)}> at feed level")
            if key in _FEED_NOT_UNDERSTOOD:
                raise NotUnderstood("structure", f"<{key}> at feed level")
            if key in _SUMMARY or key in _DESCRIPTION:
                if has_summary and not has_content:
                    has_content = True
                elif key in _SUMMARY:
                    has_summary = True
            elif key in _CONTENT or key in _CONTENT_ENCODED:
                raise NotUnderstood("structure", f"<{key}> at feed level")
            if child.getparent() is not channel:
                continue
            if key in ("image", "textinput"):
                title_done = False  # feedparser forgets the title it has here
            elif key in _TITLE:
                if entries:
                    raise NotUnderstood("structure", "feed title after entries")
                value, kind = self._text_field("title", child, "text/plain")
                if not title_done:
                    feed["title"] = value
                    feed["title_detail"] = {"type": kind, "value": value}
                # media:title does not count as the title for later ones
                title_done = title_done or (bool(value) and key != "media_title")
            elif key == "link":
                self._link(feed, child, entry=False)
            elif key in ("language", "dc_language"):
                feed["language"] = self._finish(key, _text(child), None)[0]
            elif key == "id" and self.version == "atom10":
                value, _ = self._finish("id", _text(child), None, resolve=True)
                feed["id"] = value
                feed.setdefault("link", value)
        return FastFeed(self.version, feed, entries)

    # - entries -

    def _entry(self, item: etree._Element, has_content: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {}
        if self.version == "rss10":
            about = item.get(f"{{{_RDF}}}about")
            if about:
                entry["id"] = about
        title_done = False
        for child in item:
            tag = child.tag
            if not isinstance(tag, str):
                continue  # a comment or processing instruction
            key = _KNOWN_KEYS.get(tag) or _known_key(tag) or _key_of(tag, child.prefix)
            action = _ENTRY_ACTIONS.get(key)
            if action is None:
                action = _entry_action(key)
            if action is _Act.INERT:
                self._check_inert(child)
            elif action is _Act.TITLE:
                value, kind = self._text_field("title", child, "text/plain")
                if not title_done:
                    entry["title"] = value
                    entry["title_detail"] = {"type": kind, "value": value}
                title_done = title_done or (bool(value) and key != "media_title")
            elif action is _Act.LINK:
                self._link(entry, child, entry=True)
            elif action is _Act.GUID:
                self._guid(entry, child)
            elif action is _Act.DATE:
                name = _DATES[key]
                value, _ = self._finish(name, _text(child), None)
                entry[name] = value
                entry[f"{name}_parsed"] = self.parse_date(value) if value else None
            elif action is _Act.SUMMARY:
                if "summary" in entry and not has_content:
                    has_content = True
                    self._content(entry, child, "text/plain")
                else:
                    default = "text/html" if key in _DESCRIPTION else "text/plain"
                    value, kind = self._text_field("summary", child, default)
                    entry["summary"] = value
                    entry["summary_detail"] = {"type": kind, "value": value}
            elif action is _Act.CONTENT:
                has_content = True
                self._content(entry, child, "text/plain")
            elif action is _Act.CONTENT_ENCODED:
                has_content = True
                self._content(entry, child, "text/html")
            elif action is _Act.SOURCE:
                # feedparser reads the source into its own record; a title after it counts
                title_done = False
                for element in child.iterdescendants():
                    if _split(element.tag)[1] in ("item", "entry", "source"):
                        raise NotUnderstood("structure", "nested <source>")
            else:
                raise NotUnderstood("element", key)
        return entry

    def _check_inert(self, element: etree._Element) -> None:
        for descendant in element.iterdescendants():
            key = self._key(descendant)
            if key is not None and key not in _INERT and not self._generic(key):
                raise NotUnderstood("element", f"{key} inside {self._key(element)}")

    def _attributes(self, element: etree._Element) -> dict[str, str]:
        """Attributes as feedparser normalises them: names lower-case, rel and type
        values lower-case; only unnamespaced ones and xml:lang."""
        attributes: dict[str, str] = {}
        for raw_name, raw_value in element.items():
            name, value = str(raw_name), str(raw_value)
            if name.startswith("{"):
                if name == f"{{{_XML}}}lang":
                    continue
                raise NotUnderstood("attribute", f"{name} on {self._key(element)}")
            name = name.lower()
            attributes[name] = value.lower() if name in ("rel", "type") else value
        return attributes

    def _link(self, record: dict[str, Any], element: etree._Element, *, entry: bool) -> None:
        attributes = self._attributes(element)
        rel = attributes.setdefault("rel", "alternate")
        default = "application/atom+xml" if rel == "self" else "text/html"
        kind = attributes.setdefault("type", default)
        href = attributes.get("url", attributes.get("uri", attributes.get("href")))
        if href:
            href = _urljoin(self.base, href)
            if rel == "alternate" and _content_type(kind) in _HTML_TYPES:
                record["link"] = href
            return
        value, _ = self._finish("link", _text(element), None, resolve=True)
        if entry:
            value = value.replace("&amp;", "&")
        record["link"] = _LINK_REFERENCE.sub(r"&\g<1>", value) if "&" in value else value

    def _guid(self, entry: dict[str, Any], element: etree._Element) -> None:
        attributes = self._attributes(element)
        is_link = attributes.get("ispermalink", "true") == "true"
        value, _ = self._finish("id", _text(element), None, resolve=is_link)
        entry["id"] = value
        entry.setdefault("guidislink", is_link and "link" not in entry)
        if is_link:
            entry.setdefault("link", value)

    def _content(self, entry: dict[str, Any], element: etree._Element, default: str) -> None:
        attributes = self._attributes(element)
        if "src" in attributes:
            raise NotUnderstood("content", "content with src")
        declared = _content_type(attributes.get("type", default))
        value, kind = self._text_field("content", element, default)
        entry.setdefault("content", []).append({"type": kind, "value": value})
        if declared in {"text/plain"} | _HTML_TYPES:
            entry.setdefault("summary", value)

    def _text_field(self, element: str, node: etree._Element, default: str) -> tuple[str, str]:
        attributes = self._attributes(node)
        if "mode" in attributes:
            raise NotUnderstood("content", "mode attribute")
        kind = _content_type(attributes.get("type", default))
        if kind not in ("text/plain", "text/html"):
            raise NotUnderstood("content", f"type {kind} on {element}")
        return self._finish(element, _text(node), kind)

    def _finish(
        self, element: str, text: str, kind: str | None, *, resolve: bool = False
    ) -> tuple[str, str]:
        """feedparser's mixin.pop for one element's text."""
        value = text.strip()
        if resolve and value:
            value = _urljoin(self.base, value)
        if kind == "text/plain" and self.version != "atom10" and _looks_like_html(value):
            kind = "text/html"
        if kind in _HTML_TYPES:
            if element == "title" and ("<" in value or "&" in value or "\r" in value):
                raise NotUnderstood("html title", value[:60])
            problem = None if element == "title" else _html_not_plain(value, self.base)
            if problem:
                raise NotUnderstood(f"html: {problem}", f"{element}: {value[:60]}")
        if not value.isascii():
            try:
                redecoded = value.encode("iso-8859-1").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                pass
            else:
                if redecoded != value:
                    raise NotUnderstood("double-encoded", value[:60])
            if _has_c1(value):
                value = value.translate(_CP1252)
        return value, kind or ""


# feedparser's names of the elements of the namespaces it knows (those _check_tree lets
# through without a look at the prefix written), by tag; "" for any other tag
_KNOWN_KEYS: dict[str, str] = {}
_KNOWN_KEYS_KEPT = 4096


def _known_key(tag: str) -> str:
    """feedparser's name for an element whose namespace is the feed's own or one it knows
    (a name that does not depend on the prefix written), "" for an element of any other
    (XHTML and the other formats' among them): a dictionary's lookup for the tags seen."""
    key = _KNOWN_KEYS.get(tag)
    if key is None:
        namespace, _ = _split_name(tag)
        known = namespace in _OWN or (namespace in _PREFIXES and namespace != _XHTML)
        key = _key_of(tag, None) if known and namespace not in _OTHER_OWN else ""
        if len(_KNOWN_KEYS) < _KNOWN_KEYS_KEPT:
            _KNOWN_KEYS[tag] = key
    return key


@lru_cache(maxsize=4096)
def _key_of(tag: str, written_prefix: str | None) -> str:
    namespace, local = _split_name(tag)
    if namespace in _OWN:
        return local
    prefix = _PREFIXES.get(namespace) or written_prefix
    return f"{prefix.lower()}_{local}" if prefix else local


def _text(element: etree._Element) -> str:
    """The element's character data; markup inside is not understood here."""
    if len(element) == 0:
        return element.text or ""
    parts = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str):
            raise NotUnderstood("markup", f"<{_split(child.tag)[1]}> inside an element")
        if child.tag is not etree.Comment:
            raise NotUnderstood("markup", "an entity or processing instruction in text")
        parts.append(child.tail or "")
    return "".join(parts)
