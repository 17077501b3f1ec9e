"""Receive a multipart upload straight into a temp file, refusing it as soon as it is too big.

Why not FastAPI's `UploadFile`: Starlette parses the whole body before the handler runs and
spools the file into the system temp directory, so an oversized upload is stored in full
before it can be refused, somewhere the app does not choose. Here the body is streamed through
python-multipart: the declared Content-Length is checked before a byte is read, the file's
bytes are counted as they arrive, and the temp file lives in a directory the app is given and
is removed when the request ends, however it ends.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, BinaryIO, Callable, Collection

from fastapi import HTTPException
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from vidcls.video_io import VIDEO_EXTENSIONS

FILE_FIELD = "file"
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
