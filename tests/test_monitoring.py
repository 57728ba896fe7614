"""The feed server as an operator watches it, over loopback HTTP against real processes: the
access log, /healthz freshness, /metrics, 410 for removed feeds, and absolute addresses
derived from the request when base_url is not set."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from civicfeed.cli import main
from civicfeed.config import load_config
from civicfeed.store import open_store
from origin import Origin
from test_service import Process, output, processes, published, published_file, write_config

__all__ = ["output", "processes"]  # the fixtures, shared with test_service

COMBINED = re.compile(
    r"^(?P<client>\S+) - - \[(?P<time>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-) "(?P<referer>[^"]*)" '
    r'"(?P<agent>[^"]*)"$'
)


@pytest.fixture
def served(origin: Origin) -> Origin:
    origin.serve_fixture("/herne/", "herne-2019.html")
    origin.serve_fixture("/dortmund.rss", "dortmund-cp1252.rss", content_type="application/rss+xml")
    return origin


def _refresh(config: Path) -> None:
    assert main(["refresh", "--config", str(config), "-q"]) == 0


def _serve(processes: list[Process], config: Path, *args: str) -> str:
    server = Process("serve", "--config", str(config), "--listen", "127.0.0.1:0", *args)
    processes.append(server)
    return f"http://127.0.0.1:{server.port()}"


def test_access_log_has_a_line_for_a_200_and_a_304(
    served: Origin, tmp_path: Path, processes: list[Process], output: str
) -> None:
    config = write_config(served, tmp_path, output=output)
    _refresh(config)
    log = tmp_path / "access.log"
    base = _serve(processes, config, "--access-log", str(log))
    headers = {"User-Agent": "Newsboat/2.36", "Referer": "https://www.herne.de/"}
    with httpx.Client(base_url=base, timeout=10, headers=headers) as client:
        first = client.get("/herne.rss")
        again = client.get("/herne.rss", headers={"If-None-Match": first.headers["etag"]})
    assert (first.status_code, again.status_code) == (200, 304)
    deadline = time.monotonic() + 5
    while len(log.read_text().splitlines()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = log.read_text().splitlines()
    assert len(lines) == 2, lines
    ok, not_modified = (COMBINED.match(line) for line in lines)
    assert ok is not None, lines
    assert not_modified is not None, lines
    assert ok["client"] == "127.0.0.1"
    assert ok["request"] == "GET /herne.rss HTTP/1.1"
    assert ok["status"] == "200", lines
    assert int(ok["bytes"]) == first.num_bytes_downloaded  # as sent: gzip-compressed
    assert ok["referer"] == "https://www.herne.de/"
    assert ok["agent"] == "Newsboat/2.36"
    assert ok["time"].endswith("+0100")  # the configured zone (Europe/Berlin, winter)
    assert not_modified["status"] == "304"
    assert not_modified["bytes"] == "-"


def test_access_log_as_json_to_stderr_and_none_when_turned_off(
    served: Origin, tmp_path: Path, processes: list[Process]
) -> None:
    config = write_config(served, tmp_path)
    _refresh(config)
    server = Process(
        "serve", "--config", str(config), "--listen", "127.0.0.1:0", "--log-format", "json"
    )
    processes.append(server)
    port = json.loads(server.wait_for('"event": "listening"'))["port"]
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/nothing.rss", timeout=10).status_code == 404
    record = json.loads(server.wait_for('"event": "request"'))
    assert record["status"] == 404
    assert record["path"] == "/nothing.rss"
    assert record["method"] == "GET"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+01:00$", record["time"])

    quiet = Process("serve", "--config", str(config), "--listen", "127.0.0.1:0", "--no-access-log")
    processes.append(quiet)
    base = f"http://127.0.0.1:{quiet.port()}"
    assert httpx.get(f"{base}/herne.rss", timeout=10).status_code == 200
    code, _ = quiet.stop()
    assert code == 0
    assert not [line for line in quiet.seen if "GET /herne.rss" in line]
    rest = quiet.popen.stderr.read() if quiet.popen.stderr else ""
    assert "GET /herne.rss" not in rest


def test_healthz_reports_the_age_of_the_last_refresh_and_503_when_stale(
    served: Origin, tmp_path: Path, processes: list[Process]
) -> None:
    config = write_config(served, tmp_path, top="stale_after: 5s\n", base_url=None)
    base = _serve(processes, config)
    never = httpx.get(f"{base}/healthz", timeout=10)
    assert never.status_code == 503
    assert never.json()["status"] == "never refreshed"

    _refresh(config)
    fresh = httpx.get(f"{base}/healthz", timeout=10)
    assert fresh.status_code == 200, fresh.text
    body = fresh.json()
    assert body["status"] == "ok"
    assert body["stale"] is False
    assert body["stale_after_seconds"] == 5
    assert 0 <= body["age_seconds"] < 5
    assert body["last_refresh"].endswith("+01:00")  # ISO 8601 in the configured zone

    # no refresh since: the cron job has stopped; it turns stale once the 5 s have passed
    deadline = time.monotonic() + 60
    while (stale := httpx.get(f"{base}/healthz", timeout=10)).status_code == 200:
        assert time.monotonic() < deadline, "never turned stale"
        assert stale.json()["age_seconds"] <= 5
        time.sleep(0.25)
    assert stale.status_code == 503
    assert stale.json()["status"] == "stale"
    assert stale.json()["age_seconds"] >= 5  # rounded to a tenth


def test_stale_after_defaults_to_three_times_the_shortest_every(tmp_path: Path) -> None:
    from civicfeed.config import load_config

    origin = Origin()  # not started: only its address is written
    config = load_config(write_config(origin, tmp_path))
    assert config.stale_limit == 3.0  # herne refreshes every 1s, dortmund every 1h
    origin.server.server_close()


def test_metrics_parse_with_the_prometheus_parser(
    served: Origin, tmp_path: Path, processes: list[Process], output: str
) -> None:
    extra = f"  - id: kaputt\n    title: Kaputt\n    url: {served.url('/kaputt.rss')}\n"
    config = write_config(served, tmp_path, extra=extra, output=output)
    assert main(["refresh", "--config", str(config), "-q"]) == 1  # kaputt: 404
    base = _serve(processes, config, "--no-access-log")
    with httpx.Client(base_url=base, timeout=10) as client:
        etag = client.get("/alle.rss").headers["etag"]
        assert client.get("/alle.rss", headers={"If-None-Match": etag}).status_code == 304
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families.values()
        for s in family.samples
    }
    assert samples[("civicfeed_sources", (("state", "ok"),))] == 2
    assert samples[("civicfeed_sources", (("state", "failing"),))] == 1
    assert samples[("civicfeed_feed_entries", (("feed", "alle"),))] == 6
    assert samples[("civicfeed_feed_entries", (("feed", "herne"),))] == 5
    assert samples[("civicfeed_fetch_errors_total", (("kind", "http"),))] == 1
    assert samples[("civicfeed_http_requests_total", (("status", "200"),))] == 1
    assert samples[("civicfeed_http_requests_total", (("status", "304"),))] == 1
    herne = samples[("civicfeed_source_last_success_timestamp_seconds", (("source", "herne"),))]
    assert abs(herne - time.time()) < 120
    assert ("civicfeed_source_last_success_timestamp_seconds", (("source", "kaputt"),)) not in (
        samples
    )
    assert 0 < samples[("civicfeed_refresh_duration_seconds", ())] < 60
    assert abs(samples[("civicfeed_last_refresh_timestamp_seconds", ())] - time.time()) < 120


def test_a_removed_source_disappears_answers_410_and_comes_back_with_its_history(
    served: Origin, tmp_path: Path, processes: list[Process], output: str
) -> None:
    config = write_config(served, tmp_path, output=output)
    _refresh(config)
    assert "dortmund.rss" in published(config)
    full = config.read_text()

    # dortmund and the aggregate are taken out of the configuration
    removed = full.split("  - id: dortmund")[0] + "feeds: []\n"
    config.write_text(removed)
    _refresh(config)
    assert published(config) == [
        "feed.xsl",
        "feeds.opml",
        "herne.atom",
        "herne.html",
        "herne.json",
        "herne.rss",
        "index.html",
    ]
    with closing(open_store(load_config(config).state)) as store:
        kept = store.entry_counts()["dortmund"]
    assert kept == 2  # the store keeps its entries until `civicfeed prune`

    base = _serve(processes, config, "--no-access-log")
    with httpx.Client(base_url=base, timeout=10) as client:
        for path in ("/dortmund.rss", "/dortmund.atom", "/alle.json", "/alle.html"):
            gone = client.get(path)
            assert gone.status_code == 410, path
            assert "removed" in gone.text
        assert client.get("/bochum.rss").status_code == 404  # never known: not found
        assert client.get("/herne.rss").status_code == 200

        # added back: its history returns, and the server serves it again
        config.write_text(full)
        _refresh(config)
        assert client.get("/dortmund.rss").status_code == 200
        assert client.get("/alle.rss").text.count("<item>") == 6


def test_prune_deletes_the_entries_of_removed_sources_only(
    served: Origin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(served, tmp_path)
    _refresh(config)
    config.write_text(config.read_text().split("  - id: dortmund")[0] + "feeds: []\n")
    capsys.readouterr()
    assert main(["prune", "--config", str(config)]) == 0
    assert capsys.readouterr().out == "dortmund: 2 entries deleted (no longer in sources.yaml)\n"
    with sqlite3.connect(tmp_path / ".civicfeed" / "state.db") as db:
        rows = dict(db.execute("SELECT source_id, COUNT(*) FROM entries GROUP BY source_id"))
    assert rows == {"herne": 5}


def test_without_base_url_the_server_makes_addresses_absolute_from_the_request(
    served: Origin, tmp_path: Path, processes: list[Process], output: str
) -> None:
    config = write_config(served, tmp_path, base_url=None, output=output)
    _refresh(config)
    on_disk = (published_file(config, "index.html") or b"").decode()
    assert 'value="alle.rss"' in on_disk  # static files: relative, and the index says so
    assert "kein\n<code>base_url</code> gesetzt" in on_disk
    base = _serve(processes, config, "--no-access-log")
    port = base.rsplit(":", 1)[1]
    with httpx.Client(base_url=base, timeout=10) as client:
        index = client.get("/")
        assert index.status_code == 200
        assert f'value="http://127.0.0.1:{port}/alle.rss"' in index.text
        assert f'href="http://127.0.0.1:{port}/feeds.opml"' in index.text
        assert "base_url" not in index.text  # the note is for files served elsewhere
        again = client.get("/", headers={"If-None-Match": index.headers["etag"]})
        assert again.status_code == 304

        named = client.get("/index.html", headers={"Host": "feeds.herne.example:8080"})
        assert 'value="http://feeds.herne.example:8080/herne.rss"' in named.text
        page = client.get("/herne.html", headers={"Host": "feeds.herne.example"})
        assert 'href="http://feeds.herne.example/index.html"' in page.text
        opml = client.get("/feeds.opml", headers={"Host": "feeds.herne.example"})
        assert 'xmlUrl="http://feeds.herne.example/alle.rss"' in opml.text
        # proxy headers count only with trust_proxy
        proxied = client.get(
            "/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "feeds.herne.de"}
        )
        assert "https://feeds.herne.de/" not in proxied.text


def test_behind_a_trusted_proxy_the_forwarded_host_and_scheme_are_used(
    served: Origin, tmp_path: Path, processes: list[Process]
) -> None:
    config = write_config(served, tmp_path, top="trust_proxy: true\n", base_url=None)
    _refresh(config)
    base = _serve(processes, config, "--no-access-log")
    proxied = httpx.get(
        f"{base}/",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "feeds.herne.de"},
        timeout=10,
    )
    assert 'value="https://feeds.herne.de/alle.rss"' in proxied.text
    forged = httpx.get(f"{base}/", headers={"X-Forwarded-Host": 'x"><script>'}, timeout=10)
    assert "<script>" not in forged.text
    assert 'value="http://localhost/alle.rss"' in forged.text


def test_run_serve_keeps_the_same_access_log(
    served: Origin, tmp_path: Path, processes: list[Process], output: str
) -> None:
    config = write_config(served, tmp_path, output=output)
    log = tmp_path / "access.log"
    service = Process(
        "run", "--config", str(config), "--serve", "127.0.0.1:0", "--access-log", str(log)
    )
    processes.append(service)
    port = service.port()
    service.wait_for("herne ")
    service.wait_for("dortmund ")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        first = client.get("/alle.atom")
        assert (
            client.get("/alle.atom", headers={"If-None-Match": first.headers["etag"]}).status_code
            == 304
        )
        assert client.get("/healthz").status_code == 200
        metrics = client.get("/metrics").text
    entries = {
        s.labels["feed"]: s.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "civicfeed_feed_entries"
        for s in family.samples
    }
    assert entries == {"herne": 5, "dortmund": 2, "alle": 6}
    code, _ = service.stop()
    assert code == 0
    statuses = [m["status"] for m in map(COMBINED.match, log.read_text().splitlines()) if m]
    assert statuses == ["200", "304", "200", "200"]
    assert not [line for line in service.seen if '"GET /' in line]  # the file, not stderr
