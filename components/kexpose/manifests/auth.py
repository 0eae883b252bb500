"""The Secret of an app's basic-auth users: an htpasswd file of bcrypt hashes (``model.auth``).

The file is made at deployment from Pulumi secret config (a secret Output, so Deferred here);
offline (preview, render, check) it is a placeholder line, never a password or a hash of one.
"""

from __future__ import annotations

from typing import Final

from kexpose.manifests.common import Manifest, metadata, plain
from kexpose.model import AppSpec, Deferred
from kexpose.model.auth import auth_secret_name

__all__ = ["HTPASSWD_PLACEHOLDER", "basic_auth_secret"]

#: What the ``auth`` key holds where the passwords are not at hand (a comment line, which the
#: proxy skips: nobody can log in with it).
HTPASSWD_PLACEHOLDER: Final = "# bcrypt hashes of the users' passwords, made at deployment\n"


def basic_auth_secret(app: AppSpec, htpasswd: str | Deferred | None) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(auth_secret_name(app.name), app.namespace, labels=app.labels),
        "type": "Opaque",
        "stringData": {"auth": plain(htpasswd if htpasswd is not None else HTPASSWD_PLACEHOLDER)},
    }
