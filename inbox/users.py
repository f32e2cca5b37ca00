"""People who use the inbox: creation and password hashing (argon2id)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy.ext.asyncio import AsyncSession

from crm import normalizers
from crm.models import ROLES, User

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False


async def add_user(
    session: AsyncSession, email: str, name: str, role: str, password: str | None
) -> User:
    address = normalizers.email(email)
    if address is None:
        raise ValueError(f"not an e-mail address: {email!r}")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if password is not None and len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    user = User(
        email=address,
        name=name,
        role=role,
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    await session.flush()
    return user
