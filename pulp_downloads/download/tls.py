"""Building the TLS context of a factory from PEM text."""
from __future__ import annotations

import dataclasses
import os
import ssl
import tempfile

from .config import RemoteConfig, Secret


def build_ssl_context(config: RemoteConfig, *, client_cert: bool = True) -> ssl.SSLContext | bool:
    """The SSL context for the remote's https requests: ``True`` for aiohttp's default
    (the system trust store, loaded once when aiohttp is imported), ``False`` when
    validation is off and no client certificate is needed, else a context of its own.

    ``ca_cert`` replaces the system trust store. The client key is written to a private
    temporary file only for as long as ``load_cert_chain`` needs it. With ``client_cert=False``
    the context presents no client certificate (for origins the key must not reach).
    """
    if not client_cert and config.client_cert:
        config = dataclasses.replace(config, client_cert="", client_key=Secret(""))
    if not config.tls_validation and not config.client_cert:
        return False
    if not config.ca_cert and not config.client_cert:
        return True
    if config.ca_cert:
        context = ssl.create_default_context(cadata=config.ca_cert)
    else:
        context = ssl.create_default_context()
    if not config.tls_validation:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if config.client_cert:
        with tempfile.TemporaryDirectory(prefix="pulp-dl-tls-") as private:
            os.chmod(private, 0o700)
            cert_path = os.path.join(private, "client.crt")
            key_path = os.path.join(private, "client.key")
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
            with os.fdopen(os.open(cert_path, flags, 0o600), "w") as fh:
                fh.write(config.client_cert)
            with os.fdopen(os.open(key_path, flags, 0o600), "w") as fh:
                fh.write(config.client_key.reveal())
            context.load_cert_chain(cert_path, key_path)
    return context

