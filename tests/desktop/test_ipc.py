"""Single instance: a server in the test process, clients in threads (the client blocks, like a
second start does), messages validated, the window raised and the similar view opened."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from helpers import make_photo  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from photosim.desktop.cmdline import FIND_SIMILAR, UNTRUSTED  # noqa: E402
from photosim.gui import ipc  # noqa: E402
from photosim.gui.app import attach_server  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WAIT_MS = 20_000
unix_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                               reason="raw AF_UNIX access to the server socket")


@pytest.fixture
def name(runtime_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime_dir))
    return ipc.server_name(tmp_path / "catalog.db")


@pytest.fixture
def server(qapp, name: str, no_leaks) -> Iterator[ipc.IPCServer]:
    srv = ipc.IPCServer(name)
    srv.listen()
    yield srv
    srv.close()


class SecondStart:
    """``send_to_running_instance`` in another process, as a second start runs it; the test
    keeps the event loop (and the server) running while it waits.

    A process, not a thread: the client blocks inside Qt (waitForReadyRead) holding the GIL,
    which would starve a server in the same interpreter.
    """

    def __init__(self, qtbot, args: list[str], name: str, cwd: str) -> None:
        self.qtbot = qtbot
        code = (
            "import json, sys\n"
            "from photosim.gui import ipc\n"
            "try:\n"
            f"    out = {{'value': ipc.send_to_running_instance({args!r}, {name!r}, "
            f"cwd={cwd!r})}}\n"
            "except ipc.IPCError as exc:\n"
            "    out = {'error': str(exc)}\n"
            "print(json.dumps(out))\n"
        )
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)

    def wait(self):
        self.qtbot.waitUntil(lambda: self.proc.poll() is not None, timeout=WAIT_MS)
        out, err = self.proc.communicate()
        result = json.loads(out)
        if "error" in result:
            raise ipc.IPCError(result["error"])
        return result["value"]


class InThread:
    """A blocking raw-socket exchange in a thread (Python's socket releases the GIL)."""

    def __init__(self, qtbot, fn, *args) -> None:
        self.qtbot = qtbot
        self.result: dict = {}

        def run() -> None:
            try:
                self.result["value"] = fn(*args)
            except Exception as exc:  # handed to the test
                self.result["error"] = exc

        self.thread = threading.Thread(target=run, name="raw client")
        self.thread.start()

    def wait(self):
        self.qtbot.waitUntil(lambda: not self.thread.is_alive(), timeout=WAIT_MS)
        self.thread.join()
        if "error" in self.result:
            raise self.result["error"]
        return self.result["value"]


def raw_exchange(name: str, payload: bytes) -> bytes:
    """Send raw bytes to the server, read its reply line (an AF_UNIX client)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(WAIT_MS / 1000)
        sock.connect(name)
        sock.sendall(payload)
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        return reply


# ---------------------------------------------------------------------------- messages
def _line(**fields) -> bytes:
    data = {"version": ipc.PROTOCOL_VERSION, "args": [], "cwd": "/", **fields}
    return json.dumps(data).encode()


@pytest.mark.parametrize("line, reason", [
    (b"not json", "not a JSON message"),
    (b"\xff\xfe", "not a JSON message"),
    (b"[1, 2]", "not a JSON object"),
    (_line(version=2), "protocol version"),
    (_line(version=True), "protocol version"),
    (_line(version="1"), "protocol version"),
    (json.dumps({"args": [], "cwd": "/"}).encode(), "protocol version"),
    (_line(args="a.jpg"), "args is not a list"),
    (_line(args=[1]), "not a string"),
    (_line(args=["a\0b"]), "NUL"),
    (_line(args=["x"] * (ipc.MAX_ARGS + 1)), "args is not a list"),
    (_line(cwd="relative/dir"), "absolute"),
    (_line(cwd=None), "not a string"),
    (_line(activation_token=5), "not a string"),
    (b"x" * (ipc.MAX_MESSAGE_BYTES + 1), "too large"),
])
def test_malformed_messages_are_refused(line: bytes, reason: str) -> None:
    with pytest.raises(ipc.IPCError, match=reason):
        ipc.decode_message(line)


def test_arguments_resolve_against_the_senders_cwd(tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "a.jpg", 1)
    line = ipc.encode_message([FIND_SIMILAR, UNTRUSTED, "a.jpg"], str(tmp_path), "tok")
    request = ipc.parse_message(line.rstrip(b"\n"))
    assert request.request.paths == (str(photo.resolve()),)
    assert request.request.find_similar and request.activation_token == "tok"
    for args in ([UNTRUSTED, "-x"], [UNTRUSTED, "a.jpg", "b.jpg"], ["missing.jpg"]):
        with pytest.raises(ipc.IPCError):
            ipc.parse_message(ipc.encode_message(args, str(tmp_path)).rstrip(b"\n"))


def test_server_name_is_per_user_and_catalog(runtime_dir, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime_dir))
    a, b = ipc.server_name(tmp_path / "a.db"), ipc.server_name(tmp_path / "b.db")
    assert a != b and a == ipc.server_name(tmp_path / "." / "a.db")
    if sys.platform.startswith("linux"):
        assert Path(a).parent == runtime_dir and len(a.encode()) <= ipc.MAX_SOCKET_PATH
    monkeypatch.setattr(ipc.getpass, "getuser", lambda: "somebody-else")
    assert ipc.server_name(tmp_path / "a.db") != a
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / ("long" * 40)))
    assert "/" not in ipc.server_name(tmp_path / "a.db")  # too long or missing: a plain name


# ---------------------------------------------------------------------------- client/server
def test_no_running_instance(qapp, name: str) -> None:
    assert ipc.send_to_running_instance(["a.jpg"], name) is False


def test_request_is_delivered(qtbot, server: ipc.IPCServer, name: str, tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "sub" / "b.jpg", 2)
    with qtbot.waitSignal(server.received, timeout=WAIT_MS) as blocker:
        client = SecondStart(qtbot, [FIND_SIMILAR, UNTRUSTED, "b.jpg"], name,
                             cwd=str(photo.parent))
    assert client.wait() is True
    request = blocker.args[0]
    assert request.request.paths == (str(photo.resolve()),) and request.request.find_similar


def test_refused_request_reaches_the_sender(qtbot, server, name: str, tmp_path: Path) -> None:
    with qtbot.waitSignal(server.rejected, timeout=WAIT_MS) as blocker:
        client = SecondStart(qtbot, [UNTRUSTED, "--help"], name, cwd=str(tmp_path))
    with pytest.raises(ipc.IPCError, match="looks like an option"):
        client.wait()
    assert "looks like an option" in blocker.args[0]


@unix_only
@pytest.mark.parametrize("payload, reason", [
    (b"{oops\n", "not a JSON message"),
    (_line(version=99) + b"\n", "protocol version"),
    (b"x" * (ipc.MAX_MESSAGE_BYTES + 10), "too large"),
])
def test_raw_malformed_messages_get_an_error_reply(qtbot, server, name, payload, reason):
    with qtbot.waitSignal(server.rejected, timeout=WAIT_MS) as blocker:
        client = InThread(qtbot, raw_exchange, name, payload)
    reply = json.loads(client.wait())
    assert reply["ok"] is False and reason in reply["error"]
    assert reason in blocker.args[0]


@unix_only
def test_silent_client_is_dropped(qtbot, server, name, monkeypatch) -> None:
    monkeypatch.setattr(ipc, "READ_TIMEOUT_MS", 200)
    with qtbot.waitSignal(server.rejected, timeout=WAIT_MS) as blocker:
        client = InThread(qtbot, raw_exchange, name, b'{"version": 1')
    assert json.loads(client.wait())["ok"] is False
    assert "no complete message" in blocker.args[0]


@unix_only
def test_stale_socket_does_not_block_start(qapp, name: str, no_leaks) -> None:
    with socket.socket(socket.AF_UNIX) as dead:  # what a crashed instance leaves behind
        dead.bind(name)
    assert os.path.exists(name)
    srv = ipc.IPCServer(name)
    srv.listen()
    assert srv.is_listening()
    srv.close()
    assert not os.path.exists(name)


def test_second_server_on_the_same_name_is_refused(qapp, server, name) -> None:
    other = ipc.IPCServer(name)
    with pytest.raises(ipc.AlreadyRunningError):
        other.listen()
    assert server.is_listening()


# ---------------------------------------------------------------------------- the window
@pytest.fixture
def library_window(qtbot, make_window, tmp_path: Path):
    """A window whose catalog holds an original, its exact copy and another photo."""
    folder = tmp_path / "photos"
    original = make_photo(folder / "original.jpg", 4)
    (folder / "copy.jpg").write_bytes(original.read_bytes())
    make_photo(folder / "other.jpg", 5)
    window = make_window(tmp_path / "catalog.db")
    with qtbot.waitSignal(window.scan_finished, timeout=120_000):
        window.folders.add_folder(str(folder))
    qtbot.waitUntil(lambda: not window.busy(), timeout=120_000)
    return window


def test_running_window_is_raised_and_opens_the_similar_view(
        qtbot, server, name, library_window, tmp_path: Path) -> None:
    """A photo outside the catalog: the similar view opens for it all the same."""
    window = library_window
    attach_server(server, window)
    window.showMinimized()
    window.tabs.setCurrentIndex(0)
    photo = make_photo(tmp_path / "Some Folder" / "not in catalog.jpg", 3)
    with qtbot.waitSignal(window.search_finished, timeout=WAIT_MS) as searched:
        client = SecondStart(qtbot, [FIND_SIMILAR, UNTRUSTED, str(photo)], name, cwd="/")
        assert client.wait() is True
        qtbot.waitUntil(lambda: window.tabs.currentIndex() == 2, timeout=WAIT_MS)
        assert not window.windowState() & Qt.WindowState.WindowMinimized
        assert window.similar_page.similar_stack.currentIndex() == 1
        assert str(photo) in window.similar_page.query_text.text()
    result = searched.args[0]
    assert result.query == str(photo) and not result.in_catalog


def test_running_window_searches_a_catalog_photo(qtbot, server, name, library_window, tmp_path):
    window = library_window
    attach_server(server, window)
    with qtbot.waitSignal(window.search_finished, timeout=WAIT_MS) as searched:
        client = SecondStart(qtbot, ["original.jpg"], name, cwd=str(tmp_path / "photos"))
        assert client.wait() is True
    result = searched.args[0]
    assert result.in_catalog and result.hits
    assert Path(result.hits[0].photo.path).name == "copy.jpg"
