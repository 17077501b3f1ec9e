"""Receive a multipart upload straight into a temp file, refusing it as soon as it is too big.

Why not FastAPI's `UploadFile`: Starlette parses the whole body before the handler runs and
spools the file into the system temp directory, so an oversized upload is stored in full
before it can be refused, somewhere the app does not choose. Here the body is streamed through
python-multipart: the declared Content-Length is checked before a byte is read, the file's
bytes are counted as they arrive, and the temp file lives in a directory the app is given and
is removed when the request ends, however it ends.

A request's `finally` does not run when the process is killed (kill -9, out of memory), so each
server process also keeps its uploads in a folder of its own (`process_upload_dir`), removed at
shutdown; a server starting removes the folders of servers that are no longer running. A live
server holds a lock on its folder for as long as it runs, so its folder is never taken for a
dead one's, even when its pid has been reused.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, BinaryIO, Callable, Collection, Iterator

from fastapi import HTTPException
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from vidcls.data.files import VIDEO_EXTENSIONS

logger = logging.getLogger(__name__)

FILE_FIELD = "file"
PROCESS_DIR_PREFIX = "vidcls-uploads-"  # + the server's pid + a random part
LOCK_FILE = ".lock"  # held (flock) by the server that owns the folder, for as long as it runs
FORM_OVERHEAD_BYTES = 16 * 1024  # multipart boundaries, part headers and the small option fields
MAX_FIELD_BYTES = 256  # option values are short numbers and booleans


@dataclass
class Upload:
    """Where the uploaded video was written, and the option fields sent with it."""

    path: Path | None = None
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)


def _too_large(max_bytes: int) -> HTTPException:
    return HTTPException(413, f"The upload is larger than the server's limit of {round(max_bytes / 2**20, 2):g} MB.")


def _safe_suffix(filename: str) -> str:
    """The client's extension when it is a known video one, else none: the name never reaches a path."""
    suffix = os.path.splitext(filename)[1].lower()
    return suffix if suffix in VIDEO_EXTENSIONS else ""


class _FormReceiver:
    """python-multipart callbacks: the `file` part goes to disk, declared option fields to memory."""

    def __init__(self, upload: Upload, tmp_dir: Path, max_bytes: int, field_names: Collection[str]) -> None:
        self.upload = upload
        self.tmp_dir = tmp_dir
        self.max_bytes = max_bytes
        self.field_names = field_names
        self._file: BinaryIO | None = None
        self._headers: dict[bytes, bytes] = {}
        self._header_name = b""
        self._header_value = b""
        self._sink: Callable[[bytes], None] | None = None
        self._field_name = ""
        self._field_value = bytearray()

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def on_part_begin(self) -> None:
        self._headers, self._sink = {}, None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        """Route the part: the first `file` part to disk, known fields to memory, the rest nowhere."""
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("latin-1")
        if name == FILE_FIELD and self._file is None:
            self._open_file(options.get(b"filename", b"").decode("latin-1"))
            self._sink = self._write_file
        elif name in self.field_names:
            self._field_name, self._field_value = name, bytearray()
            self._sink = self._append_field

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._sink is not None:
            self._sink(data[start:end])

    def on_part_end(self) -> None:
        if self._field_name:
            self.upload.fields[self._field_name] = self._field_value.decode("utf-8", errors="replace")
        self._sink, self._field_name = None, ""

    def _open_file(self, filename: str) -> None:
        fd, name = tempfile.mkstemp(prefix="vidcls-upload-", suffix=_safe_suffix(filename), dir=self.tmp_dir)
        self.upload.path = Path(name)
        self._file = os.fdopen(fd, "wb")

    def _write_file(self, chunk: bytes) -> None:
        # Written from the event loop: chunks are at most a socket read (~64 KiB) and land in the
        # page cache, cheaper than a thread hop per chunk.
        self.upload.size += len(chunk)
        if self.upload.size > self.max_bytes:
            raise _too_large(self.max_bytes)
        self._file.write(chunk)

    def _append_field(self, chunk: bytes) -> None:
        self._field_value += chunk
        if len(self._field_value) > MAX_FIELD_BYTES:
            raise HTTPException(422, f"The form field '{self._field_name}' is too long.")


def _boundary(request: Request) -> bytes:
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise HTTPException(415, f"Send the video as multipart/form-data in a field named '{FILE_FIELD}'.")
    return params[b"boundary"]


def _check_declared_length(request: Request, max_bytes: int) -> None:
    """Refuse before reading when the client says up front that the body is too big."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + FORM_OVERHEAD_BYTES:
        raise _too_large(max_bytes)


@asynccontextmanager
async def received_upload(
    request: Request, tmp_dir: Path, max_bytes: int, field_names: Collection[str] = ()
) -> AsyncIterator[Upload]:
    """Stream the request's `file` part into ``tmp_dir``; the file is deleted on leaving the block."""
    boundary = _boundary(request)
    _check_declared_length(request, max_bytes)
    upload = Upload()
    receiver = _FormReceiver(upload, tmp_dir, max_bytes, field_names)
    try:
        parser = MultipartParser(boundary, receiver.callbacks())
        try:
            async for chunk in request.stream():
                parser.write(chunk)
            parser.finalize()
        except FormParserError as error:
            raise HTTPException(400, "The multipart body is malformed.") from error
        finally:
            receiver.close()
        if upload.path is None:
            raise HTTPException(422, f"No file was sent: put the video in a form field named '{FILE_FIELD}'.")
        if upload.size == 0:
            raise HTTPException(422, "The uploaded file is empty.")
        yield upload
    finally:
        if upload.path is not None:
            upload.path.unlink(missing_ok=True)


@contextmanager
def process_upload_dir(parent: Path) -> Iterator[Path]:
    """A folder under ``parent`` for this process's uploads, locked while in use and removed on leaving;
    the folders of servers no longer running are removed first."""
    parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_upload_dirs(parent)
    folder = Path(tempfile.mkdtemp(prefix=f"{PROCESS_DIR_PREFIX}{os.getpid()}-", dir=parent))
    lock = open(folder / LOCK_FILE, "w")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        lock.close()


def remove_abandoned_upload_dirs(parent: Path) -> list[Path]:
    """Remove the upload folders under ``parent`` whose server is gone; returns them."""
    removed = [folder for folder in parent.glob(f"{PROCESS_DIR_PREFIX}*") if folder.is_dir() and _abandoned(folder)]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
        logger.info("removed %s, left by a server that is no longer running", folder)
    return removed


def _abandoned(folder: Path) -> bool:
    """No process holds the folder's lock; a folder not locked yet is abandoned only when its pid is gone
    (its server may be between creating the folder and locking it)."""
    try:
        with open(folder / LOCK_FILE, "r+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True
    except FileNotFoundError:
        return not _pid_alive(_pid_of(folder))


def _pid_of(folder: Path) -> int:
    pid = folder.name.removeprefix(PROCESS_DIR_PREFIX).split("-")[0]
    return int(pid) if pid.isdigit() else -1


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True
