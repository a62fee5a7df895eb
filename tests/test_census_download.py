"""Downloads against a local HTTP server on 127.0.0.1 serving files from ../shared/data (never the internet)."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from persona_lab.census import download_dictionary, download_pums, load_dictionary, read_pums
from persona_lab.errors import PersonaLabError


class _Server:
    def __init__(self, routes: dict[str, Path]) -> None:
        self.routes = routes
        self.hits: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                server.hits.append(self.path)
                src = server.routes.get(self.path)
                if src is None:
                    self.send_error(404, "Not Found")
                    return
                body = src.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(shared: Path) -> Iterator[_Server]:
    s = _Server(
        {
            "/pums/2018/1-Year/csv_pri.zip": shared / "pums" / "zips" / "csv_pri.zip",
            "/pums/2018/1-Year/csv_pnd.zip": shared / "pums" / "zips" / "csv_pnd.zip",
            "/dict/PUMS_Data_Dictionary_2018.csv": shared / "pums" / "PUMS_Data_Dictionary_2018.csv",
        }
    )
    yield s
    s.close()


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_download_cache_and_checksum(server: _Server, tmp_path: Path, shared: Path) -> None:
    cache = tmp_path / "cache"
    paths = download_pums(2018, ["RI", "38"], cache_dir=cache, base_url=f"{server.url}/pums")
    assert paths == [cache / "pums" / "2018" / "csv_pri.zip", cache / "pums" / "2018" / "csv_pnd.zip"]
    src = shared / "pums" / "zips" / "csv_pri.zip"
    assert sha256(paths[0]) == sha256(src)
    side = paths[0].with_name("csv_pri.zip.sha256").read_text().split()
    assert side == [sha256(src), "csv_pri.zip"]
    assert len(server.hits) == 2
    # Cached and verified: no new request.
    assert download_pums(2018, "ri", cache_dir=cache, base_url=f"{server.url}/pums") == paths[:1]
    assert len(server.hits) == 2
    # A corrupted cached file no longer matches its sidecar and is fetched again.
    paths[0].write_bytes(b"garbage")
    download_pums(2018, "RI", cache_dir=cache, base_url=f"{server.url}/pums")
    assert len(server.hits) == 3 and sha256(paths[0]) == sha256(src)
    # The downloaded zips read like the originals.
    assert len(read_pums(paths, 2018)) == len(
        read_pums([src, shared / "pums" / "zips" / "csv_pnd.zip"], 2018)
    )
    assert not list(cache.rglob("*.tmp"))


def test_cache_dir_from_environment(server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONA_LAB_CACHE", str(tmp_path / "env-cache"))
    (p,) = download_pums(2018, "RI", base_url=f"{server.url}/pums")
    assert p == tmp_path / "env-cache" / "pums" / "2018" / "csv_pri.zip"


def test_mirror_is_used_without_network(shared: Path, tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{_free_port()}"
    (p,) = download_pums(2018, "HI", cache_dir=tmp_path, mirror=shared / "pums" / "zips", base_url=closed)
    assert p == shared / "pums" / "zips" / "csv_phi.zip"
    d = download_dictionary(2019, cache_dir=tmp_path, mirror=shared / "pums", base_url=closed)
    assert d == shared / "pums" / "PUMS_Data_Dictionary_2019.csv"


def test_offline_is_a_clear_error(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(PersonaLabError) as exc:
        download_pums(2018, "VT", cache_dir=tmp_path, base_url=closed)
    msg = str(exc.value)
    assert "csv_pvt.zip: cannot download" in msg and "offline" in msg and "mirror" in msg
    assert not (tmp_path / "pums" / "2018" / "csv_pvt.zip").exists()


def test_missing_file_on_server(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(PersonaLabError, match=r"csv_pvt.zip: the server answered HTTP 404"):
        download_pums(2018, "VT", cache_dir=tmp_path, base_url=f"{server.url}/pums")
    with pytest.raises(PersonaLabError, match="unknown state 'XX'"):
        download_pums(2018, "XX", cache_dir=tmp_path, base_url=f"{server.url}/pums")


def test_served_file_that_is_not_a_zip(server: _Server, tmp_path: Path, shared: Path) -> None:
    server.routes["/pums/2018/1-Year/csv_pvt.zip"] = shared / "pums" / "psam_p50_2018_1yr_VT.csv"
    with pytest.raises(PersonaLabError, match="csv_pvt.zip: not a readable zip"):
        download_pums(2018, "VT", cache_dir=tmp_path, base_url=f"{server.url}/pums")
    assert not list((tmp_path / "pums" / "2018").iterdir())  # the bad download is not cached


def test_dictionary_download_then_load_from_cache(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSONA_LAB_CACHE", str(tmp_path))
    from persona_lab.census._dictionary import dictionary_candidates

    p = download_dictionary(2018, base_url=f"{server.url}/dict")
    assert p == tmp_path / "2018" / "PUMS_Data_Dictionary_2018.csv"
    # The cache is the last place looked in; 2018 ships with the package, whose copy is the same file.
    assert dictionary_candidates(2018)[-1] == p
    d = load_dictionary(2018, download=False)
    assert d.year == 2018 and d.source.read_bytes() == p.read_bytes()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_load_states_from_a_mirror(shared: Path, tmp_path: Path) -> None:
    from persona_lab.census import load_states

    mirror = tmp_path / "mirror"
    (mirror / "2018" / "1-Year").mkdir(parents=True)
    (mirror / "2018" / "1-Year" / "csv_pnd.zip").symlink_to(shared / "pums" / "zips" / "csv_pnd.zip")
    (mirror / "PUMS_Data_Dictionary_2018.csv").symlink_to(shared / "pums" / "PUMS_Data_Dictionary_2018.csv")
    frame = load_states(2018, ["ND"], cache_dir=tmp_path / "cache", mirror=mirror)
    assert len(frame) == 7876 and set(frame["state"]) == {"ND"}
    assert not (tmp_path / "cache").exists()  # nothing downloaded


def test_file_put_in_the_cache_by_hand_is_used_offline(shared: Path, tmp_path: Path) -> None:
    # The offline error says "Download the file by hand to <cache path>"; a file put there (no .sha256
    # sidecar) is then used without the network instead of being fetched again.
    closed = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(PersonaLabError) as exc:
        download_pums(2018, "RI", cache_dir=tmp_path, base_url=closed)
    dest = tmp_path / "pums" / "2018" / "csv_pri.zip"
    assert f"by hand to {dest}" in str(exc.value)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes((shared / "pums" / "zips" / "csv_pri.zip").read_bytes())
    assert download_pums(2018, "RI", cache_dir=tmp_path, base_url=closed) == [dest]
    with pytest.raises(PersonaLabError) as exc:
        download_dictionary(2018, cache_dir=tmp_path, base_url=closed)
    dict_dest = tmp_path / "2018" / "PUMS_Data_Dictionary_2018.csv"
    assert f"by hand to {dict_dest}" in str(exc.value)
    dict_dest.parent.mkdir(parents=True, exist_ok=True)
    dict_dest.write_bytes((shared / "pums" / "PUMS_Data_Dictionary_2018.csv").read_bytes())
    assert download_dictionary(2018, cache_dir=tmp_path, base_url=closed) == dict_dest
