"""Portrait uploads, reads and deletions, with storage that never loses the current image."""

from __future__ import annotations

import logging
import time
import uuid
from typing import BinaryIO

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from app.characters.models import Character
from app.common.database import lock_for_writing, row_is_gone
from app.errors import NotFound, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from app.extensions import db
from app.portraits.processing import PortraitProcessingError, process_portrait
from app.portraits.storage import FilesystemStorage, is_transactional, storage

log = logging.getLogger(__name__)
ABANDONED_UPLOAD_SECONDS = 3600


def _read_limited(stream: BinaryIO) -> bytes:
    limit = current_app.config["MAX_PORTRAIT_BYTES"]
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"The portrait is larger than the limit of {limit} bytes.")
    return data


def replace_portrait(*, character: Character, upload: BinaryIO) -> Character:
    """Store the new image first; point the character at it; only then drop the old one."""
    try:
        processed = process_portrait(_read_limited(upload))
    except PortraitProcessingError as error:
        errors = {"files": {"file": [error.message]}}
        if error.kind == "unsupported":
            raise UnsupportedMediaType(error.message, errors=errors) from None
        raise ValidationFailed(error.message, errors=errors) from None
    store = storage()
    # kept apart: after a failed commit (the character deleted meanwhile) the row's attributes
    # can no longer be loaded, and the new files must still be found and removed
    character_id = character.id
    old, new = character.portrait_digest, processed.digest
    store.put(character_id, new, {"full": processed.full.data, "thumb": processed.thumb.data})
    character.portrait_digest = new
    character.portrait_content_type = processed.full.content_type
    character.portrait_width = processed.full.width
    character.portrait_height = processed.full.height
    try:
        if is_transactional() and old and old != new:
            store.delete(character_id, old)  # in the same transaction as the switch
        db.session.commit()
    except BaseException as error:
        db.session.rollback()
        if not is_transactional():
            _drop_unreferenced(character_id, new)
        if isinstance(error, StaleDataError | IntegrityError) and row_is_gone(
            Character, character_id
        ):
            # deleted while this upload was processed: what a later GET would say (the
            # filesystem backend noticed a stale row, the database one a missing parent)
            raise NotFound("No such character (it was deleted meanwhile).") from None
        raise
    if not is_transactional() and old and old != new:
        store.delete(character_id, old)
    return character


def _drop_unreferenced(character_id: uuid.UUID, digest: str) -> None:
    """After a failed switch, remove the new files unless a concurrent winner uses them."""
    try:
        current = db.session.scalar(
            select(Character.portrait_digest).where(Character.id == character_id)
        )
    except Exception:  # the database is unavailable: `flask portraits gc` will collect them
        log.warning("could not check portrait %s of %s", digest, character_id, exc_info=True)
        return
    if current != digest:
        storage().delete(character_id, digest)


def delete_portrait(*, character: Character) -> None:
    digest = character.portrait_digest
    if digest is None:
        raise NotFound("This character has no portrait.")
    character.portrait_digest = None
    character.portrait_content_type = None
    character.portrait_width = None
    character.portrait_height = None
    if is_transactional():
        storage().delete(character.id, digest)
    db.session.commit()
    if not is_transactional():
        storage().delete(character.id, digest)


def read_portrait(*, character: Character, rendition: str) -> bytes:
    """The image's bytes. When they are gone, the portrait was most likely replaced between
    reading the character and reading its image (the old files go once the new one is
    committed): the character is read again and its current image served (``character`` then
    names it, for the ETag)."""
    for attempt in (1, 2):
        if character.portrait_digest is None:
            raise NotFound("This character has no portrait.")
        data = storage().read(character.id, character.portrait_digest, rendition)
        if data is not None:
            return data
        if attempt == 1:
            db.session.refresh(character)
    log.error("portrait %s of %s is missing", character.portrait_digest, character.id)
    raise NotFound("This character's portrait is missing.")


def forget(files: list[tuple[uuid.UUID, str]]) -> None:
    """After characters were deleted (and committed): remove their portrait files.

    The database backend needs nothing: its blobs are deleted with the characters (cascade).
    """
    if is_transactional():
        return
    for character_id, digest in files:
        storage().delete(character_id, digest)


def portraits_of(*, owner_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    """(character id, digest) of every portrait of a user's characters, their rows locked until
    the caller commits: an upload racing the account's deletion then waits, finds its character
    gone and removes its own files, instead of committing files this list has missed."""
    statement = select(Character.id, Character.portrait_digest).where(
        Character.portrait_digest.is_not(None)
    )
    statement = statement.where(Character.owner_id == owner_id).with_for_update()
    lock_for_writing()  # SQLite has no row locks
    return [(row[0], row[1]) for row in db.session.execute(statement).all()]


def collect_garbage() -> int:
    """Delete stored portraits no character points at (an hour old at least), and dead uploads'
    temporary files; the number of portraits (a full image and its thumbnail each) and
    temporary files removed."""
    store = storage()
    rows = db.session.execute(
        select(Character.id, Character.portrait_digest).where(
            Character.portrait_digest.is_not(None)
        )
    ).all()
    referenced = {(row[0], row[1]) for row in rows}
    removed = 0
    # an upload's files are written before its character points at them: files younger than
    # this may belong to an upload that has not committed yet (the database backend's blobs
    # are in that upload's transaction, unseen until it commits)
    cutoff = time.time() - ABANDONED_UPLOAD_SECONDS
    for key in list(store.stored(older_than=cutoff)):
        if key not in referenced:
            store.delete(*key)
            removed += 1
    if isinstance(store, FilesystemStorage):
        for leftover in store.leftovers():
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink(missing_ok=True)
                removed += 1
    db.session.commit()
    return removed
