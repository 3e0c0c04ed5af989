"""Artifacts and content units in the admin: view-only pages (no add, no change, no Save;
the repair action stays), human sizes with the exact count, digests and paths that wrap."""
from __future__ import annotations

import pytest

from pulp_downloads.models import Artifact, ContentUnit, Remote

pytestmark = pytest.mark.django_db
SIZE = '<span class="size" title="1,357,417 bytes">1.36 MB</span>'


@pytest.fixture
def stored():
    remote = Remote.objects.create(name="uxd-big", url="https://example.test/PULP_MANIFEST")
    artifact = Artifact.objects.create(file="artifact/aa/aaaa", size=1_357_417,
                                       sha224="b" * 56, sha256="a" * 64, sha384="c" * 96,
                                       sha512="d" * 128)
    unit = ContentUnit.objects.create(remote=remote, relative_path="pool/big.iso",
                                      sha256="a" * 64, size=1_357_417, artifact=artifact)
    return remote, artifact, unit


def test_sizes_are_human_with_the_exact_count_as_a_tooltip(admin_client, stored):
    _, artifact, unit = stored
    for url in ("/admin/pulp_downloads/artifact/", "/admin/pulp_downloads/contentunit/"):
        page = admin_client.get(url).content.decode()
        assert SIZE in page, url
        assert "1357417" not in page, url
    for url in (f"/admin/pulp_downloads/artifact/{artifact.pk}/change/",
                f"/admin/pulp_downloads/contentunit/{unit.pk}/change/"):
        page = admin_client.get(url).content.decode()
        assert "1.36 MB (1,357,417 bytes)" in page, url
        assert "1357417" not in page, url


def test_artifacts_and_content_units_are_view_only(admin_client, stored):
    _, artifact, unit = stored
    for model, pk in (("artifact", artifact.pk), ("contentunit", unit.pk)):
        page = admin_client.get(f"/admin/pulp_downloads/{model}/{pk}/change/").content.decode()
        name = {"artifact": "artifact", "contentunit": "content unit"}[model]
        assert f"<h1>View {name}</h1>" in page and f"Change {name}" not in page, model
        assert 'name="_save"' not in page and 'name="_continue"' not in page, model
        assert admin_client.get(f"/admin/pulp_downloads/{model}/add/").status_code == 403
        changed = admin_client.post(f"/admin/pulp_downloads/{model}/{pk}/change/", {})
        assert changed.status_code == 403, model
        listing = admin_client.get(f"/admin/pulp_downloads/{model}/").content.decode()
        assert f"Select {name} to view" in listing and f"Add {name}" not in listing, model
    artifacts = admin_client.get("/admin/pulp_downloads/artifact/").content.decode()
    assert 'value="repair_selected"' in artifacts  # the action stays


def test_a_content_unit_links_its_remote_and_artifact(admin_client, stored):
    remote, artifact, unit = stored
    page = admin_client.get("/admin/pulp_downloads/contentunit/").content.decode()
    assert (f'<a href="/admin/pulp_downloads/artifact/{artifact.pk}/change/" class="digest" '
            f'title="sha256:{"a" * 64}">{"a" * 12}…</a>') in page
    page = admin_client.get(f"/admin/pulp_downloads/contentunit/{unit.pk}/change/").content.decode()
    assert f'<a href="/admin/pulp_downloads/remote/{remote.pk}/change/">uxd-big</a>' in page


def test_every_digest_shows_whole_in_a_wrapping_cell(admin_client, stored):
    _, artifact, _ = stored
    page = admin_client.get(f"/admin/pulp_downloads/artifact/{artifact.pk}/change/").content.decode()
    for algorithm in ("sha224", "sha256", "sha384", "sha512"):
        assert getattr(artifact, algorithm) in page, algorithm
    assert "pulp_downloads/admin.css" in page  # .field-sha512 .readonly { word-break }
