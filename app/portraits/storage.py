"""Where portrait bytes live, behind one small interface with two real backends.

* :class:`FilesystemStorage` — files under ``PORTRAIT_DIR``, named from the character id and the
  image's content hash, written to a temporary file and renamed into place (atomic on POSIX),
  so a crash never leaves a half-written portrait under a real name.
* :class:`DatabaseStorage` — a table of blobs in the application database, so several
  instances behind a load balancer share portraits with no extra service. Its writes join the
  caller's transaction: the new image and the character's pointer to it commit together.

A portrait is addressed by (character id, digest); each has two renditions, ``full`` and
``thumb``. Replacing a portrait stores the new one under a new digest first and removes the old
one only after the character points at the new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from flask import Flask, current_app
from sqlalchemy import ForeignKey, LargeBinary, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from app.common.types import UTCDateTime, utcnow
from app.extensions import db

RENDITIONS = ("full", "thumb")


class PortraitStorage(Protocol):
    def put(self, character_id: uuid.UUID, digest: str, renditions: dict[str, bytes]) -> None:
        """Store both renditions (for the database backend: inside the current transaction)."""

    def read(self, character_id: uuid.UUID, digest: str, rendition: str) -> bytes | None: ...

    def delete(self, character_id: uuid.UUID, digest: str) -> None:
        """Remove both renditions; missing ones are fine."""

    def stored(self, older_than: float | None = None) -> Iterator[tuple[uuid.UUID, str]]:
        """Every (character id, digest) held, for garbage collection; with ``older_than`` (a
        time), only those written before it."""


class FilesystemStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, character_id: uuid.UUID, digest: str, rendition: str) -> Path:
        return self.root / character_id.hex[:2] / f"{character_id}-{digest}-{rendition}.webp"

    def put(self, character_id: uuid.UUID, digest: str, renditions: dict[str, bytes]) -> None:
        for rendition, data in renditions.items():
            target = self._path(character_id, digest, rendition)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".upload-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
                raise

    def read(self, character_id: uuid.UUID, digest: str, rendition: str) -> bytes | None:
        try:
            return self._path(character_id, digest, rendition).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, character_id: uuid.UUID, digest: str) -> None:
        for rendition in RENDITIONS:
            with contextlib.suppress(FileNotFoundError):
                self._path(character_id, digest, rendition).unlink()

    def stored(self, older_than: float | None = None) -> Iterator[tuple[uuid.UUID, str]]:
        seen: set[tuple[uuid.UUID, str]] = set()
        for path in self.root.glob("*/*.webp"):
            try:
                character_id = uuid.UUID(path.name[:36])
                written = path.stat().st_mtime
            except (ValueError, FileNotFoundError):
                continue
            if older_than is not None and written >= older_than:
                continue
            digest = path.name[37:].split("-")[0]
            if (character_id, digest) not in seen:
                seen.add((character_id, digest))
                yield character_id, digest

    def leftovers(self) -> Iterator[Path]:
        """Temporary files of uploads that died mid-write."""
        yield from self.root.glob("*/.upload-*.tmp")


class PortraitBlob(db.Model):
    __tablename__ = "portrait_blobs"

    character_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("characters.id", ondelete="CASCADE"), primary_key=True
    )
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    rendition: Mapped[str] = mapped_column(String(8), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DatabaseStorage:
    def put(self, character_id: uuid.UUID, digest: str, renditions: dict[str, bytes]) -> None:
        for rendition, data in renditions.items():
            db.session.merge(
                PortraitBlob(
                    character_id=character_id, digest=digest, rendition=rendition, data=data
                )
            )

    def read(self, character_id: uuid.UUID, digest: str, rendition: str) -> bytes | None:
        return db.session.scalar(
            select(PortraitBlob.data).where(
                PortraitBlob.character_id == character_id,
                PortraitBlob.digest == digest,
                PortraitBlob.rendition == rendition,
            )
        )

    def delete(self, character_id: uuid.UUID, digest: str) -> None:
        db.session.execute(
            delete(PortraitBlob).where(
                PortraitBlob.character_id == character_id, PortraitBlob.digest == digest
            )
        )

    def stored(self, older_than: float | None = None) -> Iterator[tuple[uuid.UUID, str]]:
        statement = select(PortraitBlob.character_id, PortraitBlob.digest).distinct()
        if older_than is not None:
            written_before = datetime.fromtimestamp(older_than, tz=UTC)
            statement = statement.where(PortraitBlob.created_at < written_before)
        rows = db.session.execute(statement).all()
        yield from ((row[0], row[1]) for row in rows)


def init_storage(app: Flask) -> None:
    if app.config["PORTRAIT_STORAGE"] == "database":
        app.extensions["portrait_storage"] = DatabaseStorage()
    else:
        app.extensions["portrait_storage"] = FilesystemStorage(Path(app.config["PORTRAIT_DIR"]))


def storage() -> PortraitStorage:
    return current_app.extensions["portrait_storage"]


def is_transactional() -> bool:
    return isinstance(storage(), DatabaseStorage)
