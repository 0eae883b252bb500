"""Basic-auth users' passwords from Pulumi secret config, hashed with bcrypt at deployment.

Each user names a secret config key (``model.auth.BasicUser.password_config``). The values are
read with ``require_secret`` and hashed inside ``apply``, so the htpasswd file is a secret Output:
the plain passwords never leave the engine's secret values, and the hashes are encrypted in the
state and masked in previews and stack outputs.
"""

from __future__ import annotations

import pulumi

from kexpose.defaults import SECRET_PLACEHOLDER
from kexpose.manifests.auth import HTPASSWD_PLACEHOLDER
from kexpose.model import AppSpec, Deferred
from kexpose.model.auth import htpasswd_line

__all__ = ["basic_auth_users"]


def _secret_config(key: str) -> pulumi.Output[str]:
    namespace, _, short = key.rpartition(":")
    return pulumi.Config(namespace or "kexpose").require_secret(short)


def basic_auth_users(app: AppSpec) -> Deferred | None:
    """The app's htpasswd file (a secret Output), or None when it declares no users."""
    auth = app.auth
    if auth is None or not auth.users:
        return None
    users = [u.name for u in auth.users]
    scope = f"{app.namespace}/{app.name}"
    passwords = [_secret_config(u.password_config) for u in auth.users]

    def hashed(values: list[str]) -> str:
        if SECRET_PLACEHOLDER in values:
            # Offline (preview, render): a hash of the placeholder would be a working login
            # with a published password in `render --show-secrets` output.
            return HTPASSWD_PLACEHOLDER
        return "".join(
            htpasswd_line(user, password, scope=scope) + "\n"
            for user, password in zip(users, values, strict=True)
        )

    made: pulumi.Output[str] = pulumi.Output.all(*passwords).apply(hashed)
    # Secret already (its inputs are), and said so again: no path may unmask it.
    return Deferred(pulumi.Output.secret(made))  # type: ignore[arg-type]
