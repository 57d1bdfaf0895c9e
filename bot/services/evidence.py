"""Evidence photos: checked by content (not by name or declared type), stored in the database, attached later.

The bytes live in the `evidence` row, so any replica of the web app can serve a photo another one received.
Rows from before migration 0005 have no bytes, only a file under var/ (`path`); they are still served from it.
"""

from pathlib import Path
from typing import NamedTuple

from sqlalchemy import Connection, update
from sqlalchemy.orm import Session, undefer

from bot.domain.errors import InvalidInput
from bot.persistence.direct import DirectConnection
from bot.persistence.models import Evidence
from bot.services.context import Services

MAX_BYTES = 5 * 1024 * 1024
MIN_BYTES = 64
# Magic numbers: a renamed text file or script is refused whatever its name says.
SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png", "png"),
    (b"WEBP", 8, "image/webp", "webp"),
)


class BadImage(InvalidInput):
    code = "bad_image"


def sniff(data: bytes) -> tuple[str, str]:
    for magic, offset, content_type, ext in SIGNATURES:
        if data[offset:offset + len(magic)] == magic and (ext != "webp" or data[:4] == b"RIFF"):
            return content_type, ext
    raise BadImage("只支持 JPG、PNG 或 WEBP 格式的照片")


def save_evidence(svc: Services, *, buyer_id: int, data: bytes) -> int:
    """Store one photo for a buyer in the database; returns its id (attached to a request when it is submitted)."""
    if len(data) > MAX_BYTES:
        raise BadImage("照片太大了，请压缩到 5MB 以内再上传", size=len(data), limit=MAX_BYTES)
    if len(data) < MIN_BYTES:
        raise BadImage("这张照片好像是空的，请重新选择", size=len(data))
    content_type, _ = sniff(data)
    with svc.sessions() as session, session.begin():
        row = Evidence(buyer_id=buyer_id, data=data, path=None, content_type=content_type,
                       size=len(data), uploaded_at=svc.clock.now())
        session.add(row)
        session.flush()
        return row.id


def attach(db: "Session | Connection | DirectConnection", *, buyer_id: int, evidence_ids: list[int],
           after_sale_id: int) -> int:
    """Attach the buyer's own unattached photos to a request (others' ids are ignored); how many were attached."""
    return db.execute(update(Evidence.__table__).where(
        Evidence.id.in_(evidence_ids), Evidence.buyer_id == buyer_id, Evidence.after_sale_id.is_(None),
    ).values(after_sale_id=after_sale_id)).rowcount


class Photo(NamedTuple):
    data: bytes
    content_type: str
    buyer_id: int
    after_sale_id: int | None


def evidence_photo(svc: Services, storage: Path, evidence_id: int) -> Photo:
    """(bytes, content type, buyer id, request id) of one photo, for the console.

    `storage` (BOT_VAR_DIR) is only read for rows from before the bytes were kept in the database; a legacy
    path outside it, or whose file is gone, is not found like a row with neither bytes nor path.
    """
    from bot.domain.errors import NotFound

    with svc.sessions() as session:
        row = session.get(Evidence, evidence_id, options=[undefer(Evidence.data)])
        if row is None:
            raise NotFound("找不到这张照片", evidence_id=evidence_id)
        data, path = row.data, row.path
        content_type, buyer_id, after_sale_id = row.content_type, row.buyer_id, row.after_sale_id
    if data is None and path:
        file = (storage / path).resolve()
        if file.is_relative_to(storage.resolve()) and file.is_file():
            data = file.read_bytes()
    if data is None:
        raise NotFound("找不到这张照片", evidence_id=evidence_id)
    return Photo(data, content_type, buyer_id, after_sale_id)
