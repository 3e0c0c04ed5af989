"""Shared fixtures: isolated media root, TLS material from trustme, loopback servers."""
from __future__ import annotations

import pytest
import trustme


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    """Each test stores files under its own MEDIA_ROOT."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    conf = dict(settings.PULP_DOWNLOADS)
    conf["WORKING_DIRECTORY"] = str(tmp_path / "media" / ".working")
    settings.PULP_DOWNLOADS = conf
    yield


@pytest.fixture
def file_roots(settings, tmp_path):
    """Allow file:// URLs under a fresh directory; returns that directory."""
    root = tmp_path / "files"
    root.mkdir()
    conf = dict(settings.PULP_DOWNLOADS)
    conf["FILE_URL_ALLOWED_ROOTS"] = [str(root)]
    settings.PULP_DOWNLOADS = conf
    return root


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_cert(ca):
    return ca.issue_cert("127.0.0.1", "localhost", "::1")


@pytest.fixture(scope="session")
def client_cert(ca):
    return ca.issue_cert("client@example.test")
