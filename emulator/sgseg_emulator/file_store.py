"""The emulator's stand-in for SendGrid's file host (S3): a directory plus pre-signed URLs.

Export files, uploaded import files and import error files live in one directory (next to the
``--db`` file, or a temporary one). They are served under ``/__files__/`` through URLs signed
like S3's pre-signed ones: anyone holding the URL may use it until it expires, no API key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

if TYPE_CHECKING:
    from .store import Store

FILES_PREFIX = "/__files__"
_SECRET_KEY = "file_url_secret"


class FileStore:
    """The file host's files (exports, uploads, import errors) and their pre-signed URLs."""

    def __init__(self, db_path: str | None, store: Store) -> None:
        self._db_path = db_path
        self._root: Path | None = None
        secret = store.get_meta(_SECRET_KEY)
        if secret is None:  # kept in the database, so URLs stay valid across restarts with --db
            secret = os.urandom(16).hex()
            store.set_meta(_SECRET_KEY, secret)
        self._secret = secret.encode()

    @property
    def root(self) -> Path:
        """The directory, made on first use (an emulator that never writes a file makes none)."""
        if self._root is None:
            if self._db_path:
                self._root = Path(f"{self._db_path}.files")
                self._root.mkdir(exist_ok=True)
            else:
                self._root = Path(tempfile.mkdtemp(prefix="sgseg-emulator-files-"))
        return self._root

    def path(self, name: str) -> Path:
        """Where the file ``name`` (e.g. ``exports/<id>_1.csv``) lives; its folder exists."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def wipe(self) -> None:
        """Delete every file."""
        if self._root is None:
            return
        for child in self._root.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)

    def close(self) -> None:
        """Remove a temporary directory (an in-memory emulator's files)."""
        if self._root is not None and not self._db_path:
            shutil.rmtree(self._root, ignore_errors=True)

    def _signature(self, method: str, name: str, expires: int) -> str:
        message = f"{method}\n{name}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def signed_url(self, base_url: str, method: str, name: str, expires_at: datetime) -> str:
        """A URL that lets ``method`` on the file ``name`` until ``expires_at``."""
        expires = int(expires_at.timestamp())
        query = urlencode({"X-Expires": expires, "X-Signature": self._signature(method, name, expires)})
        return f"{base_url.rstrip('/')}{FILES_PREFIX}/{name}?{query}"

    def check(self, method: str, name: str, query: dict[str, str], now: datetime) -> str | None:
        """Why this signed request is refused (None: it is allowed), in S3's words."""
        try:
            expires = int(query.get("X-Expires", ""))
        except ValueError:
            return "Query-string authentication requires the X-Signature and X-Expires parameters"
        expected = self._signature(method, name, expires)
        if not hmac.compare_digest(expected, query.get("X-Signature", "")):
            return "The request signature we calculated does not match the signature you provided"
        if now.timestamp() > expires:
            return "Request has expired"
        return None
