"""Account schemas: what may come in, and the public and private views that go out."""

from __future__ import annotations

import contextlib
import re
import unicodedata
from typing import Any

import idna
import marshmallow as ma
from marshmallow import fields, validate, validates_schema

from app.auth import passwords
from app.common.pagination import PageQuery, sort_field
from app.common.schemas import BaseSchema, HTMLLength, SafeHTML, StrictBoolean, Text
from app.users.models import ROLES

USERNAME_PATTERN = r"^[A-Za-z0-9_-]{3,32}$"
MAX_LOCAL_PART_OCTETS = 64  # RFC 5321 4.5.3.1.1
# RFC 5322's dot-atom, with the letters of every script (RFC 6531), as marshmallow's Email
# validator reads an unquoted local part
DOT_ATOM = re.compile(r"[-!#$%&'*+/=?^`{}|~\w]+(\.[-!#$%&'*+/=?^`{}|~\w]+)*\Z")
_QUOTED_PAIR = re.compile(r"\\(.)")


def typed_email(value: str) -> str:
    """An address as it was stored before domains were canonical: NFC (like all text users
    write, so ``e`` + U+0301 is the same address as ``é``), trimmed, lower-cased."""
    return unicodedata.normalize("NFC", value).strip().lower()


def _local_part(local: str) -> str:
    """``"v"`` is ``v`` (RFC 5321 4.1.2: a quoted string and its content, quoted pairs read as
    the characters they escape, are one local part): unquoted when the content is a dot-atom,
    which needs no quotes; any other quoted local part is kept as typed."""
    if len(local) >= 2 and local[0] == local[-1] == '"':
        content = _QUOTED_PAIR.sub(r"\1", local[1:-1])
        if DOT_ATOM.match(content):
            return content
    return local


def _domain(domain: str) -> str:
    """The domain in its one Unicode spelling (IDNA 2008 with UTS #46 mapping): ``bücher.example``
    for ``xn--bcher-kva.example`` too, ``x.example`` for ``x`` with a zero-width space or soft
    hyphen, or in fullwidth letters. A domain IDNA refuses raises its ``idna.IDNAError``, a
    ValueError. An address literal (``[192.0.2.1]``) is no name and is kept as typed."""
    if not domain or domain.startswith("["):
        return domain
    return idna.decode(idna.encode(domain, uts46=True))


def normalise_email(value: str) -> str:
    """The one spelling of an address that is stored and looked up, so that one mailbox is one
    account: :func:`typed_email`, with a quoted local part that needs no quotes unquoted and
    the domain in its canonical IDNA form. Register and login both go through it, so any
    spelling that registered also signs in. ValueError when the domain is not a valid IDNA
    domain name (no such address can receive mail)."""
    typed = typed_email(value)
    local, at, domain = typed.rpartition("@")
    if not at:
        return typed  # no address at all: the validator says so
    return f"{_local_part(local)}@{_domain(domain)}"


def search_spellings(text: str) -> set[str]:
    """What an admin's ``?q=`` looks for in the stored usernames and addresses: the text
    lower-cased, and the canonical spelling of the address or domain it may be (so
    ``xn--bcher-kva`` from a mail log finds ``…@bücher.example``, and a fullwidth or
    soft-hyphenated spelling finds the address it stands for)."""
    spellings = {text.lower()}
    with contextlib.suppress(ValueError):  # not an address or domain IDNA reads (a name part)
        spellings.add(normalise_email(text) if "@" in text else _domain(typed_email(text)))
    return {spelling for spelling in spellings if spelling}


def _local_part_fits(address: str) -> None:
    """marshmallow's syntax check has no limit on the part before the ``@``; mail servers refuse
    one over RFC 5321's 64 octets, so such an address could never receive mail."""
    if len(address.rpartition("@")[0].encode()) > MAX_LOCAL_PART_OCTETS:
        raise ma.ValidationError(
            f"The part before '@' is longer than {MAX_LOCAL_PART_OCTETS} octets (RFC 5321)."
        )


class EmailAddress(fields.Email):
    """A syntactically valid address (no network look-up), normalised by
    :func:`normalise_email` before it is validated, with a local part of at most 64 octets."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.append(_local_part_fits)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, str):
            try:
                value = normalise_email(value)
            except ValueError:
                raise self.make_error("invalid") from None
        return super()._deserialize(value, attr, data, **kwargs)


class Password(fields.String):
    """10..128 characters, taken as typed (never trimmed, never returned), counted in the
    NFC form that is hashed and verified (:func:`app.auth.passwords.normalise`): counted as
    sent, five ``e`` + U+0301 would pass as 10 characters and then be 5 characters long."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            load_only=True,
            validate=validate.Length(min=10, max=128),
            metadata={"format": "password", "example": "correct horse battery"},
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return passwords.normalise(super()._deserialize(value, attr, data, **kwargs))


class UserPublic(BaseSchema):
    id = fields.UUID(dump_only=True)
    username = fields.String(dump_only=True, metadata={"example": "aria_sw"})
    display_name = fields.String(dump_only=True, metadata={"example": "Aria Swiftwind"})
    bio = fields.String(dump_only=True, metadata={"example": "<p>Game master since 1998.</p>"})
    created_at = fields.AwareDateTime(dump_only=True)


class UserPrivate(UserPublic):
    email = fields.String(dump_only=True, metadata={"example": "aria@example.com"})
    role = fields.String(dump_only=True, metadata={"enum": list(ROLES)})
    is_active = fields.Boolean(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)


class RegisterSchema(BaseSchema):
    email = EmailAddress(
        required=True, validate=validate.Length(max=254), metadata={"example": "aria@example.com"}
    )
    username = Text(
        required=True,
        validate=[
            validate.Length(min=3, max=32),
            validate.Regexp(
                USERNAME_PATTERN, error="3..32 characters of A-Z, a-z, 0-9, '_' and '-'."
            ),
        ],
        metadata={"example": "aria_sw"},
    )
    password = Password(required=True)
    display_name = Text(
        validate=validate.Length(min=1, max=64), metadata={"example": "Aria Swiftwind"}
    )


class LoginSchema(BaseSchema):
    # normalised where it is looked up (app.auth.service.login), as registration stored it.
    # Its length is not that of an address (254): registration counts the canonical spelling,
    # and a spelling that registered (soft hyphens in the domain, say) must sign in too. The
    # limit only bounds the work: an address that long matches no account (401).
    email = fields.String(
        required=True, validate=validate.Length(max=1024), metadata={"example": "aria@example.com"}
    )
    password = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(max=1024),
        metadata={"format": "password", "example": "correct horse battery"},
    )


class TokenPairSchema(ma.Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(
        required=True, metadata={"description": "Access token lifetime, seconds", "example": 900}
    )


class MeUpdateSchema(BaseSchema):
    display_name = Text(validate=validate.Length(min=1, max=64))
    bio = SafeHTML(validate=HTMLLength(max=1000))
    password = Password()
    current_password = fields.String(
        load_only=True, validate=validate.Length(max=1024), metadata={"format": "password"}
    )

    @validates_schema
    def _password_pair(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "password" in data and "current_password" not in data:
            raise ma.ValidationError(
                "Give your current password to change it.", field_name="current_password"
            )
        if "current_password" in data and "password" not in data:
            raise ma.ValidationError("current_password goes with a new password.", "password")


class AdminUserUpdateSchema(BaseSchema):
    role = fields.String(validate=validate.OneOf(ROLES))
    is_active = StrictBoolean()


class UserListQuery(PageQuery):
    q = Text(
        validate=validate.Length(max=100),
        metadata={
            "description": "Case-insensitive substring of the username or email (an address "
            "or domain also in its canonical spelling). Cleaned like any text (NFC, trimmed): "
            "a query of only spaces, like an empty one, filters nothing."
        },
    )
    sort = sort_field(["username", "created_at"], "username")
