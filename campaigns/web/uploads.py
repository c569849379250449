"""A CSV upload (multipart, the file in field ``csv``, optionally a campaign do-not-call list
in field ``dnc``) streamed to temporary files, capped.

The cap is enforced on the bytes as they arrive, not on ``Content-Length`` alone (a chunked
body has none, and a client may lie): past the cap the request is refused with 413 and the
partial file deleted. Starlette's multipart parser spools the file part to disk past 1 MB;
it is then moved into a temporary directory of ours under a fixed name, so a client's file
name never becomes a path.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from campaigns.errors import UserError

CSV_FIELD = "csv"
DNC_FIELD = "dnc"


class UploadTooLarge(UserError):
    """The body passed the cap (answered 413)."""


@dataclass(frozen=True, kw_only=True)
class Upload:
    """The form's text fields, and the uploaded files on disk (deleted after the request)."""

    fields: dict[str, str]
    csv_path: Path
    filename: str
    dnc_path: Path | None = None


async def _capped(request: Request, cap: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > cap:
            raise UploadTooLarge(_too_large(cap))
        yield chunk


def _too_large(cap: int) -> str:
    return f"the upload is larger than {cap // (1024 * 1024)} MB (serve --max-upload-mb)"


@asynccontextmanager
async def receive_upload(request: Request, cap: int) -> AsyncIterator[Upload]:
    """The upload of ``request``; UserError (400) for a malformed form or a missing file,
    :class:`UploadTooLarge` (413) past ``cap`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise UploadTooLarge(_too_large(cap))
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UserError("send the form as multipart/form-data with the file in field 'csv'")
    parser = MultiPartParser(request.headers, _capped(request, cap), max_files=2, max_fields=50)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise UserError(f"malformed upload: {exc.message}") from None
    tmp = Path(tempfile.mkdtemp(prefix="vaani-upload-"))
    try:
        fields: dict[str, str] = {}
        files: dict[str, UploadFile] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields[key] = value
            elif key in (CSV_FIELD, DNC_FIELD):
                files[key] = value
            else:
                raise UserError(
                    f"unexpected file field {key!r}: the contacts go in 'csv', a do-not-call "
                    "list in 'dnc'"
                )
        if CSV_FIELD not in files:
            raise UserError("no file: send the CSV in the form field 'csv'")
        paths = {key: tmp / f"{key}.upload" for key in files}
        for key, upload in files.items():
            await run_in_threadpool(_save, upload, paths[key])
        yield Upload(
            fields=fields,
            csv_path=paths[CSV_FIELD],
            filename=files[CSV_FIELD].filename or "upload.csv",
            dnc_path=paths.get(DNC_FIELD),
        )
    finally:
        await form.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _save(upload: UploadFile, path: Path) -> None:
    upload.file.seek(0)
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)
