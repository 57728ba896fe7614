"""No server-side request forgery: what a listing links to, and every redirect, is checked
before civicfeed connects. Over loopback: the test origin (127.0.0.1) is the trusted source,
``localhost`` and the other spellings of 127.0.0.1 stand for other services on the machine."""

from __future__ import annotations

from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from civicfeed.netpolicy import address_refusal, scheme_refusal, trusted_hosts
from conftest import write_sources
from origin import Origin
from test_refresh import refresh

SECRET = b"<html><body><main><p>11.02.2019 internal service</p></main></body></html>"


def redirect(location: str) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


def listing(links: list[str]) -> str:
    items = "".join(
        f'<li class="item"><a href="{link}">Meldung {n}: {link[:40]}</a></li>'
        for n, link in enumerate(links)
    )
    return f"<html><body><ul>{items}</ul></body></html>"


def write_config(tmp_path: Path, origin: Origin, extra: str = "") -> Path:
    return write_sources(
        tmp_path,
        f"  - id: stadt\n    title: Stadt\n    url: {origin.url('/liste/')}\n"
        "    html: {item: li.item, detail_date: main}\n",
        top=extra,
    )


def test_links_to_internal_services_are_refused_before_connecting(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = origin.port
    origin.set("/secret", SECRET)
    origin.set("/own-detail", SECRET)  # the trusted source's own host: allowed
    origin.routes["/hop-to-localhost"] = redirect(f"http://localhost:{port}/secret")
    origin.routes["/hop-to-data"] = redirect("data:text/html,<p>11.02.2019</p>")
    links = [
        f"http://localhost:{port}/secret",
        f"http://2130706433:{port}/secret",
        f"http://0x7f000001:{port}/secret",
        f"http://[::1]:{port}/secret",
        f"http://127.1:{port}/secret",
        "/hop-to-localhost",
        "/hop-to-data",
        "/own-detail",
    ]
    origin.set("/liste/", listing(links))
    code, output = refresh(write_config(tmp_path, origin), capsys)
    assert code == 0, output
    assert origin.hits("/secret") == [], "an internal service was reached"
    assert len(origin.hits("/own-detail")) == 1
    for host in ("localhost", "2130706433", "0x7f000001", "::1"):
        assert f"{host} (127.0.0.1) is a loopback address" in output or (
            f"{host} is a loopback address" in output
        ), host
    assert "127.1 (127.0.0.1) is a loopback address" in output
    assert "a redirect to a data: URL is refused: civicfeed fetches only http and https" in output
    assert output.count("unless the host is listed in allow_hosts") == 6


def test_allow_hosts_lets_an_internal_host_be_read(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    origin.set("/secret", SECRET)
    origin.set("/liste/", listing([origin.url("/secret", host="localhost")]))
    config = write_config(tmp_path, origin, "allow_hosts: [localhost]\n")
    code, output = refresh(config, capsys)
    assert code == 0, output
    assert len(origin.hits("/secret")) == 1
    assert "loopback" not in output


def test_a_trusted_source_redirected_to_another_internal_host_fails_with_the_reason(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    origin.set("/secret", SECRET)
    origin.routes["/liste/"] = redirect(origin.url("/secret", host="localhost"))
    code, output = refresh(write_config(tmp_path, origin), capsys)
    assert code == 1
    assert "failed: localhost (127.0.0.1) is a loopback address" in output
    assert origin.hits("/secret") == []


def test_redirects_are_followed_at_most_five_hops(
    origin: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for hop in range(6):
        origin.routes[f"/r{hop}"] = redirect(f"/r{hop + 1}")
    origin.set("/r6", listing(["/x"]))
    origin.routes["/liste/"] = redirect("/r0")
    code, output = refresh(write_config(tmp_path, origin), capsys)
    assert code == 1
    assert "too many redirects (more than 5)" in output
    assert origin.hits("/r5") == []


@pytest.mark.parametrize(
    ("host", "addresses", "kind"),
    [
        ("localhost", ["127.0.0.1", "::1"], "loopback"),
        ("intranet", ["10.1.2.3"], "private"),
        ("router", ["192.168.0.1"], "private"),
        ("metadata", ["169.254.169.254"], "link-local"),
        ("mapped", ["::ffff:127.0.0.1"], "loopback"),
        ("v6", ["fe80::1"], "link-local"),
        ("v6", ["fd00::1"], "private"),
        ("cgnat", ["100.64.0.1"], "non-public"),
        ("mcast", ["239.1.2.3"], "multicast"),
        ("zero", ["0.0.0.0"], "unspecified"),
        ("reserved", ["240.0.0.1"], "private"),
        ("mixed", ["93.184.216.34", "127.0.0.1"], "loopback"),
    ],
)
def test_internal_addresses_are_refused(host: str, addresses: list[str], kind: str) -> None:
    reason = address_refusal(host, addresses)
    assert reason is not None
    assert f"is a {kind} address" in reason


def test_public_addresses_and_trusted_hosts() -> None:
    assert address_refusal("www.herne.de", ["93.184.216.34", "2606:2800:220:1::"]) is None
    assert trusted_hosts(["http://127.0.0.1:8080/x", None], ["Intranet.Example", "[::1]"]) == {
        "127.0.0.1",
        "intranet.example",
        "::1",
    }
    assert scheme_refusal("https://x.example/") is None
    assert scheme_refusal("file:///etc/passwd") == (
        "the address a file: URL is refused: civicfeed fetches only http and https"
    )
