"""Single instance: a second start hands its request to the running app and exits.

The protocol (qutebrowser's pattern): the second instance connects to a :class:`QLocalServer`
and writes ONE line of UTF-8 JSON, then waits briefly for a one-line JSON reply::

    {"version": 1, "args": ["--find-similar", "--untrusted-args", "a.jpg"],
     "cwd": "/home/me/Pictures", "activation_token": "..."}
    -> {"ok": true}   or   {"ok": false, "error": "..."}

The running app trusts nothing in it: the size is capped (:data:`MAX_MESSAGE_BYTES`), the
version, every type and the working directory are checked, and the arguments go through the same
parser as its own command line (:func:`photosim.desktop.cmdline.parse_gui_args`: the
``--untrusted-args`` guard, relative paths resolved against the *sender's* working directory,
missing paths refused). ``activation_token`` (optional) is the ``XDG_ACTIVATION_TOKEN`` the
launcher gave the second instance, so that on Wayland the running window may take the focus.

The server name is per user and per catalog (:func:`server_name`): on Linux a socket in
``$XDG_RUNTIME_DIR`` (a private folder), elsewhere a name Qt places in the per-user temp folder,
listened on with :attr:`QLocalServer.SocketOption.UserAccessOption`. A socket file left by a
crashed instance is detected (nobody answers) and removed, so it never blocks a start.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtNetwork import QAbstractSocket, QLocalServer, QLocalSocket

from photosim.desktop.cmdline import ArgsError, GuiRequest, parse_gui_args
from photosim.library import Error

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
#: Longest accepted message, bytes (a request is a few hundred bytes).
MAX_MESSAGE_BYTES = 64 * 1024
MAX_ARGS = 256
MAX_ARG_CHARS = 4096
MAX_TOKEN_CHARS = 512
CONNECT_TIMEOUT_MS = 1000
WRITE_TIMEOUT_MS = 2000
#: How long a second instance waits for the running app's reply.
REPLY_TIMEOUT_MS = 5000
#: How long the server keeps a connection that has not sent a complete line.
READ_TIMEOUT_MS = 5000
#: Unix socket paths are limited to about 108 bytes.
MAX_SOCKET_PATH = 100


class IPCError(Error):
    """A message was refused, or the running instance could not be reached."""


class AlreadyRunningError(IPCError):
    """Another instance already listens on the server name."""


@dataclass(frozen=True)
class Message:
    """A validated message (its arguments not parsed yet: that needs the sender's cwd)."""

    args: tuple[str, ...]
    cwd: str
    activation_token: str | None = None


@dataclass(frozen=True)
class Request:
    """A parsed request from a second instance, as the running app acts on it."""

    request: GuiRequest
    activation_token: str | None = None


def server_name(catalog_path: str | os.PathLike[str]) -> str:
    """The server name of the instance that uses ``catalog_path``, for the current user.

    Returns:
        A full socket path in ``$XDG_RUNTIME_DIR`` when that is usable (Linux), else a plain
        name (Qt puts it in the temp folder; on Windows it is a named pipe).
    """
    try:
        user = getpass.getuser()
    except Exception:  # no login name (containers): the uid still separates users
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    key = f"{user}\0{Path(catalog_path).expanduser().resolve()}"
    name = f"photosim-{hashlib.blake2b(key.encode(), digest_size=8).hexdigest()}"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if sys.platform.startswith("linux") and runtime and os.path.isdir(runtime):
        path = os.path.join(runtime, f"{name}.sock")
        if len(path.encode()) <= MAX_SOCKET_PATH:
            return path
    return name


# ------------------------------------------------------------------------------ messages
def encode_message(
    args: Sequence[str], cwd: str | None = None, activation_token: str | None = None
) -> bytes:
    """One message line (UTF-8 JSON and a newline)."""
    payload: dict[str, object] = {
        "version": PROTOCOL_VERSION,
        "args": list(args),
        "cwd": cwd if cwd is not None else os.getcwd(),
    }
    if activation_token:
        payload["activation_token"] = activation_token
    return json.dumps(payload, ensure_ascii=False).encode() + b"\n"


def _check_text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise IPCError(f"{what} is not a string")
    if len(value) > limit or "\0" in value:
        raise IPCError(f"{what} is too long or contains NUL")
    return value


def decode_message(line: bytes) -> Message:
    """Validate one message line (without its newline).

    Raises:
        IPCError: Too large, not UTF-8 JSON, not an object, another protocol version, a field
            of the wrong type or size, a relative working directory.
    """
    if len(line) > MAX_MESSAGE_BYTES:
        raise IPCError(f"message too large ({len(line)} bytes)")
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise IPCError(f"not a JSON message: {exc}") from None
    if not isinstance(data, dict):
        raise IPCError("the message is not a JSON object")
    version = data.get("version")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise IPCError(f"protocol version {version!r} is not {PROTOCOL_VERSION} "
                       "(was the other photosim another version?)")
    args = data.get("args")
    if not isinstance(args, list) or len(args) > MAX_ARGS:
        raise IPCError(f"args is not a list of at most {MAX_ARGS} strings")
    checked = tuple(_check_text(a, "an argument", MAX_ARG_CHARS) for a in args)
    cwd = _check_text(data.get("cwd"), "cwd", MAX_ARG_CHARS)
    if not os.path.isabs(cwd):
        raise IPCError("cwd is not an absolute path")
    token = data.get("activation_token")
    if token is not None:
        token = _check_text(token, "activation_token", MAX_TOKEN_CHARS)
    return Message(checked, cwd, token or None)


def parse_message(line: bytes) -> Request:
    """Validate a message line and parse its arguments against the sender's cwd.

    Raises:
        IPCError: The message or its arguments were refused.
    """
    message = decode_message(line)
    try:
        request = parse_gui_args(message.args, message.cwd)
    except ArgsError as exc:
        raise IPCError(str(exc)) from None
    return Request(request, message.activation_token)


# ------------------------------------------------------------------------------ client
def send_to_running_instance(
    args: Sequence[str],
    name: str,
    cwd: str | None = None,
    activation_token: str | None = None,
    reply_timeout_ms: int = REPLY_TIMEOUT_MS,
) -> bool:
    """Hand a start's arguments to the running instance, if there is one.

    Blocking (the second instance has no event loop yet); safe from any thread.

    Args:
        args: The arguments after the program name.
        name: :func:`server_name` of the catalog.
        cwd: The working directory relative paths are relative to (default: ours).
        activation_token: ``XDG_ACTIVATION_TOKEN`` to pass on (Wayland focus).
        reply_timeout_ms: How long to wait for the reply.

    Returns:
        True if a running instance took the request (or got it and did not answer in time:
        it is busy and will act on it), False if none is running (including a stale socket).

    Raises:
        IPCError: The running instance refused the request, or the message could not be sent.
    """
    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(CONNECT_TIMEOUT_MS):
        error = socket.error()
        if error in (QLocalSocket.LocalSocketError.ServerNotFoundError,
                     QLocalSocket.LocalSocketError.ConnectionRefusedError):
            return False
        raise IPCError(f"cannot reach the running photosim: {socket.errorString()}")
    try:
        socket.write(encode_message(args, cwd, activation_token))
        if not socket.waitForBytesWritten(WRITE_TIMEOUT_MS) and socket.bytesToWrite():
            raise IPCError(f"cannot send to the running photosim: {socket.errorString()}")
        reply = bytearray()
        while b"\n" not in reply and len(reply) <= MAX_MESSAGE_BYTES:
            if not socket.waitForReadyRead(reply_timeout_ms):
                break
            reply += bytes(socket.readAll().data())
        if b"\n" not in reply:
            logger.warning("the running photosim did not confirm within %d ms",
                           reply_timeout_ms)
            return True
        try:
            answer = json.loads(bytes(reply).split(b"\n", 1)[0])
        except ValueError:
            raise IPCError("the running photosim sent an unreadable reply") from None
        if not isinstance(answer, dict) or answer.get("ok") is not True:
            error = answer.get("error") if isinstance(answer, dict) else None
            raise IPCError(f"the running photosim refused the request: {error}")
        return True
    finally:
        socket.abort()


def _someone_listens(name: str) -> bool:
    socket = QLocalSocket()
    socket.connectToServer(name)
    alive = socket.waitForConnected(CONNECT_TIMEOUT_MS)
    socket.abort()
    return alive


# ------------------------------------------------------------------------------ server
class IPCServer(QObject):
    """The running instance's end: accepts, validates and answers requests.

    Args:
        name: :func:`server_name` of the catalog.
        parent: Owner.

    Signals:
        received(object): A valid :class:`Request` arrived (already answered ``ok``).
        rejected(str): A message was refused; the reason (also sent to the client and logged).
    """

    received = Signal(object)
    rejected = Signal(str)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._server = QLocalServer(self)
        if not os.path.isabs(name):
            # A name in the shared temp folder: only this user may connect. (Not for a path in
            # the private XDG_RUNTIME_DIR: with this option Qt binds elsewhere and renames the
            # socket into place, silently replacing a live one instead of failing.)
            self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._on_server_new_connection)
        # Per connection: the bytes received so far, or None once it has been answered.
        self._buffers: dict[QLocalSocket, bytearray | None] = {}

    def listen(self) -> None:
        """Start listening; remove a stale socket left by a crashed instance.

        Raises:
            AlreadyRunningError: Another instance answers on this name.
            IPCError: Listening failed for another reason.
        """
        if _someone_listens(self.name):
            raise AlreadyRunningError(f"another photosim listens on {self.name}")
        if self._server.listen(self.name):
            logger.info("listening for other starts on %s", self._server.fullServerName())
            return
        if self._server.serverError() == QAbstractSocket.SocketError.AddressInUseError:
            if _someone_listens(self.name):
                raise AlreadyRunningError(f"another photosim listens on {self.name}")
            logger.info("removing a stale socket left by an earlier photosim: %s", self.name)
            QLocalServer.removeServer(self.name)
            if self._server.listen(self.name):
                return
        raise IPCError(f"cannot listen on {self.name}: {self._server.errorString()}")

    def is_listening(self) -> bool:
        return self._server.isListening()

    def close(self) -> None:
        """Stop listening (removes the socket file) and drop open connections."""
        for socket in list(self._buffers):
            socket.abort()
        self._buffers.clear()
        self._server.close()

    @Slot()
    def _on_server_new_connection(self) -> None:
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            self._buffers[socket] = bytearray()
            socket.readyRead.connect(lambda s=socket: self._on_socket_ready_read(s))
            socket.disconnected.connect(lambda s=socket: self._forget(s))
            # A client that never finishes its line must not pin the connection.
            QTimer.singleShot(READ_TIMEOUT_MS, socket, lambda s=socket: self._on_timeout(s))
            if socket.bytesAvailable():
                self._on_socket_ready_read(socket)

    def _forget(self, socket: QLocalSocket) -> None:
        if socket in self._buffers:
            del self._buffers[socket]
            socket.deleteLater()

    def _on_timeout(self, socket: QLocalSocket) -> None:
        if socket not in self._buffers:
            return
        if self._buffers[socket] is None:  # answered, but the client keeps the line open
            socket.abort()
        else:
            self._refuse(socket, f"no complete message within {READ_TIMEOUT_MS} ms")

    def _on_socket_ready_read(self, socket: QLocalSocket) -> None:
        buffer = self._buffers.get(socket)
        if buffer is None:  # unknown, or answered: one message per connection
            socket.readAll()
            return
        buffer += bytes(socket.read(MAX_MESSAGE_BYTES + 1 - len(buffer)).data())
        end = buffer.find(b"\n")
        if end < 0:
            if len(buffer) > MAX_MESSAGE_BYTES:
                self._refuse(socket, f"message too large (over {MAX_MESSAGE_BYTES} bytes)")
            return
        line = bytes(buffer[:end])
        try:
            request = parse_message(line)
        except IPCError as exc:
            self._refuse(socket, str(exc))
            return
        self._reply(socket, {"ok": True})
        logger.info("request from another start: %s", request.request)
        self.received.emit(request)

    def _refuse(self, socket: QLocalSocket, reason: str) -> None:
        logger.warning("refused a message from another start: %s", reason)
        self._reply(socket, {"ok": False, "error": reason})
        self.rejected.emit(reason)

    def _reply(self, socket: QLocalSocket, answer: dict) -> None:
        if self._buffers.get(socket) is None:
            return
        self._buffers[socket] = None
        socket.write(json.dumps(answer).encode() + b"\n")
        socket.flush()
        socket.disconnectFromServer()  # after the pending bytes are written
