"""Provider API keys set through the console: encrypted at rest with Fernet, never returned.

The Fernet key is the `resilience.provider_keys_secret` setting when given, else a file in the
data dir created with 0600 permissions on first use. Stored keys are loaded into the provider
pool at start-up; an agent's own `api_key`/`api_key_env` still wins over them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from podium.errors import BadRequest, NotFound
from podium.runtime.providers.pool import ProviderPool
from podium.settings import Settings
from podium.store.provider_keys import ProviderKeyStore

log = logging.getLogger(__name__)
SECRET_FILE = "provider_keys.secret"


def _secret_file(path: Path) -> bytes:
    """Read the key file, creating it (owner-only) when missing."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


class ProviderKeyService:
    """Sets, removes and loads provider keys; the keys themselves never leave the server."""

    def __init__(self, settings: Settings, store: ProviderKeyStore, pool: ProviderPool) -> None:
        self.settings = settings
        self.store = store
        self.pool = pool
        self._fernet: Fernet | None = None

    def _cipher(self) -> Fernet:
        if self._fernet is None:
            secret = self.settings.resilience.provider_keys_secret
            material = secret.get_secret_value().encode() if secret else _secret_file(
                self.settings.data_dir / SECRET_FILE)
            self._fernet = Fernet(material)
        return self._fernet

    async def load(self) -> None:
        """Decrypt every stored key into the provider pool (at start-up)."""
        for provider, ciphertext in (await self.store.all()).items():
            try:
                self.pool.keys[provider] = self._cipher().decrypt(ciphertext.encode()).decode()
            except InvalidToken:
                log.warning("stored key for provider %s cannot be decrypted with this secret", provider)

    def _check(self, provider: str) -> None:
        if provider not in self.pool.factories:
            raise NotFound(f"unknown provider {provider!r}; known: {', '.join(sorted(self.pool.factories))}")

    async def set(self, provider: str, key: str) -> dict[str, object]:
        self._check(provider)
        if not key.strip():
            raise BadRequest("key must not be empty")
        await self.store.put(provider, self._cipher().encrypt(key.strip().encode()).decode())
        self.pool.keys[provider] = key.strip()
        self.pool.forget()  # providers built with the old key are rebuilt on next use
        return {"provider": provider, "status": "stored"}

    async def remove(self, provider: str) -> dict[str, object]:
        self._check(provider)
        if not await self.store.remove(provider):
            raise NotFound(f"no key stored for provider {provider!r}")
        self.pool.keys.pop(provider, None)
        self.pool.forget()
        return {"provider": provider, "status": "removed"}
