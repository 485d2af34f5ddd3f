"""OpenAI's Files API: uploads streamed to disk, listing, retrieval, download and deletion."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from ._errors import ApiError
from ._http import json_response, openai_page, stream_file
from ._ids import new_id
from ._openai_errors import invalid, missing, not_found
from ._state import EmulatorState

UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
MIN_EXPIRY, MAX_EXPIRY = 3600, 2_592_000
BATCH_FILE_LIFETIME = 2_592_000
"""Batch inputs (and batch outputs) expire 30 days after they are made, by default."""
_CHUNK = 256 * 1024
_FIELD_BYTES = 64 * 1024
TOO_LARGE = "File is too large."
NOT_JSONL = "Invalid file format for Batch API. Must be .jsonl"


@dataclass
class StoredFile:
    """One file: its metadata, and where its bytes are."""

    id: str
    filename: str
    purpose: str
    created_at: int
    bytes: int
    expires_at: int | None
    path: Path

    def to_json(self) -> dict[str, Any]:
        """The `FileObject` JSON."""
        return {"id": self.id, "object": "file", "bytes": self.bytes,
                "created_at": self.created_at, "filename": self.filename,
                "purpose": self.purpose, "status": "processed", "expires_at": self.expires_at,
                "status_details": None}


class FileStore:
    """Every file of one emulator, in creation order; touched on the server's loop only."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self.root = state.data_dir / "openai" / "files"
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._files: dict[str, StoredFile] = {}

    def new_id(self) -> tuple[str, Path]:
        """A fresh file id and the path its bytes go to."""
        file_id = new_id("file-", 22)
        return file_id, self.root / file_id

    def add(self, stored: StoredFile) -> StoredFile:
        """Register a file whose bytes are already on disk."""
        self._files[stored.id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        """The file, unless unknown, deleted or expired."""
        stored = self._files.get(file_id)
        if stored is None:
            return None
        if stored.expires_at is not None and self._state.clock.now() >= stored.expires_at:
            self.delete(file_id)
            return None
        return stored

    def require(self, file_id: str) -> StoredFile:
        """The file, or the API's 404."""
        stored = self.get(file_id)
        if stored is None:
            raise not_found("File", file_id)
        return stored

    def delete(self, file_id: str) -> bool:
        """Forget the file and remove its bytes; False when it was not there."""
        stored = self._files.pop(file_id, None)
        if stored is None:
            return False
        stored.path.unlink(missing_ok=True)
        return True

    def listed(self, purpose: str | None, newest_first: bool) -> list[StoredFile]:
        """Live files (of `purpose` when given), in creation order or its reverse."""
        files = [f for f in list(self._files.values())
                 if self.get(f.id) is not None and purpose in (None, f.purpose)]
        return files[::-1] if newest_first else files


class FileRoutes:
    """Handlers of ``/v1/files`` over a `FileStore`."""

    def __init__(self, state: EmulatorState, store: FileStore) -> None:
        self._state = state
        self._store = store

    async def upload(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/files``: multipart `purpose`, optional `expires_after[...]`, `file`."""
        if not request.content_type.startswith("multipart/"):
            raise ApiError(400, "Expected a multipart/form-data request body.")
        file_id, path = self._store.new_id()
        try:
            fields, filename, size = await self._receive(request, path)
            stored = await self._accept(file_id, path, fields, filename, size)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return json_response(self._store.add(stored).to_json())

    async def _receive(self, request: web.Request,
                       path: Path) -> tuple[dict[str, str], str | None, int | None]:
        """Form fields, and the file part streamed to `path` (its name and size)."""
        reader = await request.multipart()
        fields: dict[str, str] = {}
        filename: str | None = None
        size: int | None = None
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise ApiError(400, "Nested multipart bodies are not supported.")
            if part.name == "file":
                if size is not None:
                    raise ApiError(400, "Only one 'file' may be uploaded per request.",
                                   param="file")
                filename = part.filename or "upload"
                size = await self._write(part, path, self._limit(fields.get("purpose")))
            elif part.name:
                fields[part.name] = await _field(part)
        return fields, filename, size

    def _limit(self, purpose: str | None) -> int:
        limits = self._state.limits
        if purpose == "batch":
            return min(limits.openai_upload_bytes, limits.openai_batch_file_bytes)
        return limits.openai_upload_bytes

    async def _write(self, part: BodyPartReader, path: Path, limit: int) -> int:
        """Stream `part` to `path`; past `limit` bytes, drain the rest and answer 400."""
        size = 0
        sink = await asyncio.to_thread(path.open, "wb")
        try:
            while chunk := await part.read_chunk(_CHUNK):
                size += len(chunk)
                if size <= limit:
                    await asyncio.to_thread(sink.write, chunk)
        finally:
            sink.close()
        if size > limit:
            raise ApiError(400, TOO_LARGE, param="file")
        return size

    async def _accept(self, file_id: str, path: Path, fields: dict[str, str],
                      filename: str | None, size: int | None) -> StoredFile:
        purpose = fields.get("purpose")
        if purpose is None:
            raise missing("purpose")
        if filename is None or size is None:
            raise missing("file")
        if purpose not in UPLOAD_PURPOSES:
            listed = ", ".join(f"'{p}'" for p in UPLOAD_PURPOSES)
            raise invalid("purpose", f"Invalid value: '{purpose}'. Supported values are: "
                                     f"{listed}.")
        created = int(self._state.clock.now())
        expires_at = _expiry(fields, created)
        if purpose == "batch":
            if size > self._limit(purpose):
                raise ApiError(400, TOO_LARGE, param="file")
            await self._check_batch_file(path, filename)
            if expires_at is None:
                expires_at = created + BATCH_FILE_LIFETIME
        return StoredFile(id=file_id, filename=filename, purpose=purpose, created_at=created,
                          bytes=size, expires_at=expires_at, path=path)

    async def _check_batch_file(self, path: Path, filename: str) -> None:
        """The `openai_batch_file_check` quirk: a `.jsonl` name, or lines that parse."""
        if self._state.quirks.openai_batch_file_check == "extension":
            if not filename.lower().endswith(".jsonl"):
                raise ApiError(400, NOT_JSONL, param="file")
        elif not await asyncio.to_thread(_lines_parse, path):
            raise ApiError(400, NOT_JSONL, param="file")

    async def listing(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/files?purpose=&limit=&order=&after=``."""
        query = request.query
        limit = _query_int(query.get("limit"), "limit", 1, 10_000, None) or 10_000
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise invalid("order", f"Invalid value: '{order}'. Supported values are: 'asc' "
                                   "and 'desc'.")
        files = self._store.listed(query.get("purpose"), newest_first=order == "desc")
        return openai_page(files, query.get("after"), limit)

    async def retrieve(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/files/{file_id}``."""
        return json_response(self._store.require(request.match_info["file_id"]).to_json())

    async def content(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/files/{file_id}/content``: the bytes, streamed from disk."""
        stored = self._store.require(request.match_info["file_id"])
        return await stream_file(request, self._state, stored.path, "application/octet-stream")

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /v1/files/{file_id}``."""
        file_id = request.match_info["file_id"]
        self._store.require(file_id)
        self._store.delete(file_id)
        return json_response({"id": file_id, "object": "file", "deleted": True})


async def _field(part: BodyPartReader) -> str:
    """A small form field's text."""
    data = bytearray()
    while chunk := await part.read_chunk(_CHUNK):
        data += chunk
        if len(data) > _FIELD_BYTES:
            raise ApiError(400, f"Form field '{part.name}' is too long.", param=part.name)
    return data.decode("utf-8", errors="replace")


def _expiry(fields: dict[str, str], created: int) -> int | None:
    """``expires_at`` from ``expires_after[anchor]`` / ``expires_after[seconds]``."""
    anchor = fields.get("expires_after[anchor]")
    seconds = fields.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise invalid("expires_after.anchor", f"Invalid value: '{anchor}'. Supported values "
                                              "are: 'created_at'.")
    value = _query_int(seconds, "expires_after.seconds", MIN_EXPIRY, MAX_EXPIRY, None)
    if value is None:
        raise missing("expires_after.seconds")
    return created + value


def _query_int(raw: str | None, param: str, minimum: int, maximum: int,
               default: int | None) -> int | None:
    """An integer from a query string or form field, within bounds."""
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(param, f"Expected an integer, but got '{raw}' instead.",
                      code="invalid_type") from None
    if not minimum <= value <= maximum:
        raise invalid(param, f"Expected a value between {minimum} and {maximum}, but got "
                             f"{value} instead.")
    return value


def _lines_parse(path: Path) -> bool:
    """Whether every non-blank line of `path` is a JSON value."""
    with path.open("rb") as source:
        for line in source:
            if line.strip():
                try:
                    json.loads(line)
                except ValueError:
                    return False
    return True
