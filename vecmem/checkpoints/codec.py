"""How a checkpoint's state is stored: JSON, compressed with zstd, optionally encrypted.

Layout: ``b"VMCP"``, a format byte (1), a flags byte (bit 0: zstd; bits 4-5: cipher, 0 none,
1 AES-256/192/128-GCM, 2 Fernet), the CRC-32 of the JSON (0 when encrypted: the cipher
authenticates), then the payload (AES-GCM: 12-byte nonce + ciphertext + tag). AES-GCM binds the
ciphertext to its header, tenant and checkpoint id (associated data), so a blob copied elsewhere
does not decrypt. Every failure to decode raises :class:`~vecmem.errors.IntegrityError`.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import zlib
from typing import Any, Literal

from vecmem._deps import require
from vecmem._keys import to_json
from vecmem.errors import ConfigurationError, IntegrityError

Cipher = Literal["aes-gcm", "fernet"]
MAGIC = b"VMCP"
FORMAT = 1
_HEADER = struct.Struct(">4sBBI")
_ZSTD = 0x01
_CIPHERS = {"aes-gcm": 1, "fernet": 2}


def generate_key(cipher: Cipher = "aes-gcm") -> bytes:
    """A new random key: 32 raw bytes for AES-GCM, a urlsafe-base64 key for Fernet."""
    if cipher == "fernet":
        return base64.urlsafe_b64encode(os.urandom(32))
    return os.urandom(32)


class Codec:
    """Encodes states to bytes at rest and back.

    >>> codec = Codec(key=generate_key())
    >>> blob, json_size = codec.encode({"step": 3}, aad=b"t/ck1")
    >>> codec.decode(blob, aad=b"t/ck1")
    {'step': 3}
    """

    def __init__(
        self,
        *,
        key: bytes | str | None = None,
        cipher: Cipher = "aes-gcm",
        compression: bool = True,
        level: int = 3,
    ) -> None:
        if cipher not in _CIPHERS:
            raise ConfigurationError(f"cipher must be 'aes-gcm' or 'fernet', got {cipher!r}")
        self.cipher = cipher
        self.compression = compression
        self.level = level
        self._aead: Any = None
        self._fernet: Any = None
        self._key = key
        if key is not None:
            self._make_cipher(cipher, key)  # fail early on a bad key

    def _make_cipher(self, cipher: str, key: bytes | str) -> Any:
        require("cryptography", "checkpoints", "encrypted checkpoints")
        if cipher == "fernet":
            if self._fernet is None:
                from cryptography.fernet import Fernet

                try:
                    self._fernet = Fernet(key)
                except (ValueError, TypeError) as exc:
                    raise ConfigurationError(
                        f"invalid Fernet key ({exc}); use generate_key('fernet')"
                    ) from exc
            return self._fernet
        if self._aead is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            raw = key.encode() if isinstance(key, str) else key
            if len(raw) not in (16, 24, 32):
                raise ConfigurationError(
                    f"an AES-GCM key is 16, 24 or 32 bytes, got {len(raw)}; use generate_key()"
                )
            self._aead = AESGCM(raw)
        return self._aead

    def encode(self, state: Any, *, aad: bytes = b"") -> tuple[bytes, int]:
        """``(blob, size of the JSON)`` for ``state`` (which must be JSON-serialisable)."""
        raw = to_json("checkpoint state", state).encode("utf-8")
        flags = 0
        payload = raw
        if self.compression:
            zstd = require("zstandard", "checkpoints", "compressed checkpoints")
            payload = zstd.ZstdCompressor(level=self.level, write_checksum=True).compress(raw)
            flags |= _ZSTD
        if self._key is None:
            return _HEADER.pack(MAGIC, FORMAT, flags, zlib.crc32(raw)) + payload, len(raw)
        flags |= _CIPHERS[self.cipher] << 4
        header = _HEADER.pack(MAGIC, FORMAT, flags, 0)
        c = self._make_cipher(self.cipher, self._key)
        if self.cipher == "fernet":
            payload = c.encrypt(payload)
        else:
            nonce = os.urandom(12)
            payload = nonce + c.encrypt(nonce, payload, header + aad)
        return header + payload, len(raw)

    @property
    def encrypted(self) -> bool:
        """Whether a key was given (:meth:`seal` then encrypts)."""
        return self._key is not None

    def seal(self, data: bytes, *, aad: bytes = b"") -> bytes:
        """``data`` encrypted with this codec's key and cipher (AES-GCM: a 12-byte nonce +
        ciphertext + tag bound to ``aad``); used for archive members (:mod:`vecmem.lifecycle`)."""
        if self._key is None:
            raise ConfigurationError("seal() needs a key")
        c = self._make_cipher(self.cipher, self._key)
        if self.cipher == "fernet":
            return c.encrypt(data)
        nonce = os.urandom(12)
        return nonce + c.encrypt(nonce, data, aad)

    def unseal(self, blob: bytes, *, aad: bytes = b"", what: str = "data") -> bytes:
        """The bytes :meth:`seal` sealed; :class:`IntegrityError` for a wrong key or damage."""
        if self._key is None:
            raise IntegrityError(f"{what} is encrypted ({self.cipher}) but no key was given")
        return self._decrypt(self.cipher, blob, aad, what)

    def decode(self, blob: bytes, *, aad: bytes = b"", what: str = "checkpoint") -> Any:
        """The state stored in ``blob``; :class:`IntegrityError` if it is corrupted, encrypted
        without a key given, or encrypted with another key."""
        blob = bytes(blob)
        if len(blob) < _HEADER.size:
            raise IntegrityError(f"{what} is corrupted: {len(blob)} bytes, shorter than a header")
        magic, fmt, flags, crc = _HEADER.unpack_from(blob)
        if magic != MAGIC or fmt != FORMAT:
            raise IntegrityError(f"{what} is corrupted or not a vecmem checkpoint (bad header)")
        payload = blob[_HEADER.size :]
        cipher_id = (flags >> 4) & 0x3
        if cipher_id:
            name = {v: k for k, v in _CIPHERS.items()}.get(cipher_id)
            if name is None:
                raise IntegrityError(f"{what} is corrupted: unknown cipher {cipher_id}")
            if self._key is None:
                raise IntegrityError(f"{what} is encrypted ({name}) but no key was given")
            if crc != 0:
                raise IntegrityError(f"{what} is corrupted (bad header)")
            payload = self._decrypt(name, payload, blob[: _HEADER.size] + aad, what)
        if flags & _ZSTD:
            zstd = require("zstandard", "checkpoints", "compressed checkpoints")
            try:
                payload = zstd.ZstdDecompressor().decompress(payload)
            except zstd.ZstdError as exc:
                raise IntegrityError(f"{what} is corrupted (zstd: {exc})") from exc
        if not cipher_id and zlib.crc32(payload) != crc:
            raise IntegrityError(f"{what} is corrupted (checksum mismatch)")
        try:
            return json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise IntegrityError(f"{what} is corrupted (invalid JSON: {exc})") from exc

    def _decrypt(self, name: str, payload: bytes, aad: bytes, what: str) -> bytes:
        if self._key is None:
            raise ConfigurationError("vecmem internal error: expected self._key is not None")
        try:
            c = self._make_cipher(name, self._key)
        except ConfigurationError as exc:
            raise IntegrityError(
                f"cannot decrypt {what}: it was encrypted with {name}, the key given does not "
                f"fit ({exc})"
            ) from exc
        from cryptography.exceptions import InvalidTag
        from cryptography.fernet import InvalidToken

        try:
            if name == "fernet":
                return c.decrypt(payload)
            return c.decrypt(payload[:12], payload[12:], aad)
        except (InvalidTag, InvalidToken, ValueError) as exc:
            raise IntegrityError(
                f"cannot decrypt {what}: wrong key, or the data is corrupted"
            ) from exc
