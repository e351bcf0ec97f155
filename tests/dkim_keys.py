"""RSA keys for the DKIM tests: the private key as PEM and the DNS record dkimpy verifies with."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PKCS8 = serialization.PrivateFormat.PKCS8


def dkim_key(
    bits: int = 2048, private_format: serialization.PrivateFormat = PKCS8
) -> tuple[bytes, bytes]:
    """A new key: its PEM and its ``v=DKIM1`` TXT record."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM, private_format, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def dkim_key_file(path: Path, bits: int = 2048) -> tuple[Path, bytes]:
    """A new key written to ``path`` (PKCS#8 PEM): the path and the TXT record."""
    pem, record = dkim_key(bits)
    path.write_bytes(pem)
    return path, record
