"""init_from reads any iopath URI: a checkpoint served over HTTP on 127.0.0.1 by the test
is downloaded once into mdreg's cache and initialises the stage."""
from __future__ import annotations

import functools
import http.server
import threading

import pytest
import torch

from mdreg.errors import UserError
from tests.conftest import make_trainer


@pytest.fixture
def http_folder(tmp_path):
    """(folder, base URL, list of requested paths) of a real HTTP server on 127.0.0.1."""
    folder = tmp_path / "served"
    folder.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def test_init_from_an_http_checkpoint_is_downloaded_once_into_the_cache(recipe_factory, http_folder, tmp_path,
                                                                        monkeypatch):
    folder, url, requests = http_folder
    monkeypatch.setenv("MDREG_CACHE", str(tmp_path / "cache"))
    recipe = recipe_factory(steps=2)
    source = make_trainer(recipe, ["train.run_name=source"])
    source.fit()
    (folder / "release.pt").write_bytes(source.last_good.read_bytes())
    ema = source.parts.ema.state_dict()

    for name in ("first", "second"):
        target = make_trainer(recipe, [f"train.run_name={name}",
                                       f"+stages.main.init_from={{path: '{url}/release.pt', weights: ema}}"])
        target.restore()
        got = target.parts.model.state_dict()
        assert all(torch.equal(got[k], ema[k]) for k in ema)
    assert requests == ["/release.pt"]  # the second run read the cached copy
    host = url.split("//")[1].replace(":", "_")
    assert (tmp_path / "cache" / "downloads" / host / "release.pt").is_file()


def test_an_unreachable_uri_is_one_error_naming_the_key(recipe_factory, http_folder, tmp_path, monkeypatch):
    _, url, _ = http_folder
    monkeypatch.setenv("MDREG_CACHE", str(tmp_path / "cache"))
    target = make_trainer(recipe_factory(steps=1), [f"+stages.main.init_from={{path: '{url}/missing.pt'}}"])
    with pytest.raises(UserError, match=r"stages\.main\.init_from\.path 'http://127\.0\.0\.1:\d+/missing\.pt' "
                                        r"cannot be fetched .*404"):
        target.restore()
