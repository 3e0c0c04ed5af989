"""The REST API under /api/: remotes, sync, tasks, artifacts, content, schema."""
from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from pulp_downloads.models import Remote, SyncTask

from .upstream import sha256

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api(api_client_for):
    return api_client_for("remote administrator")


def remote_body(**fields):
    body = {"name": "r1", "url": "https://example.test/repo/PULP_MANIFEST"}
    body.update(fields)
    return body


def test_anonymous_read_and_write_are_refused(db):
    client = APIClient()
    for path in ("/api/remotes/", "/api/tasks/", "/api/artifacts/", "/api/content/"):
        assert client.get(path).status_code == 401
    assert client.post("/api/remotes/", remote_body(), format="json").status_code == 401
    assert not Remote.objects.exists()


def test_token_and_basic_authentication(db):
    user = User.objects.create_user("bot", password="bot-pass")
    user.groups.add(Group.objects.get(name="remote viewer"))
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/remotes/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Basic " + __import__("base64").b64encode(b"bot:bot-pass").decode())
    assert client.get("/api/remotes/").status_code == 200


def test_create_remote_never_returns_secrets(api, client_cert):
    body = remote_body(
        username="alice", password="pw-SECRET", proxy_url="http://127.0.0.1:3128",
        proxy_username="p", proxy_password="px-SECRET",
        client_cert=client_cert.cert_chain_pems[0].bytes().decode(),
        client_key=client_cert.private_key_pem.bytes().decode(),
        mirrors=["https://mirror.test/repo/"], headers={"X-A": "b"}, max_retries=0,
    )
    response = api.post("/api/remotes/", body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    text = response.content.decode()
    assert "SECRET" not in text and "PRIVATE KEY" not in text
    assert data["has_password"] and data["has_proxy_password"] and data["has_client_key"]
    assert "password" not in data and "client_key" not in data
    assert data["href"] == f"http://testserver/api/remotes/{data['id']}/"
    assert data["max_retries"] == 0 and data["mirrors"] == ["https://mirror.test/repo/"]
    listing = api.get("/api/remotes/").content.decode()
    assert "SECRET" not in listing


@pytest.mark.parametrize("fields,bad_field", [
    ({"url": "ftp://example.test/"}, "url"),
    ({"url": "https://u:p@example.test/"}, "url"),
    ({"username": "alice"}, "password"),
    ({"proxy_username": "u", "proxy_password": "p"}, "proxy_url"),
    ({"ca_cert": "nonsense"}, "ca_cert"),
    ({"download_concurrency": 0}, "download_concurrency"),
    ({"max_retries": -1}, "max_retries"),
    ({"policy": "sometimes"}, "policy"),
    ({"headers": {"Host": "x"}}, "headers"),
    ({"mirrors": ["gopher://m.test/"]}, "mirrors"),
])
def test_invalid_remote_is_400_with_the_field_named(api, fields, bad_field):
    response = api.post("/api/remotes/", remote_body(**fields), format="json")
    assert response.status_code == 400
    assert bad_field in response.json(), response.json()
    assert not Remote.objects.exists()


def test_a_file_mirror_of_an_http_remote_is_400_naming_mirrors(api, file_roots):
    response = api.post("/api/remotes/", remote_body(mirrors=[file_roots.as_uri() + "/"]),
                        format="json")
    assert response.status_code == 400
    assert "mirrors must be of the same kind as its url" in str(response.json()["mirrors"])
    assert not Remote.objects.exists()


def test_max_retries_above_the_maximum_is_400_naming_max_retries(api):
    response = api.post("/api/remotes/", remote_body(max_retries=101), format="json")
    assert response.status_code == 400
    assert "100" in " ".join(response.json()["max_retries"]), response.json()
    assert api.post("/api/remotes/", remote_body(max_retries=100),
                    format="json").status_code == 201


def test_mismatched_client_key_is_400_on_client_key(api, ca, client_cert):
    other = ca.issue_cert("x@example.test").private_key_pem.bytes().decode()
    response = api.post("/api/remotes/", remote_body(
        client_cert=client_cert.cert_chain_pems[0].bytes().decode(), client_key=other),
        format="json")
    assert response.status_code == 400 and "client_key" in response.json()


def test_patch_keeps_secrets_that_are_not_sent(api):
    created = api.post("/api/remotes/", remote_body(username="a", password="pw"), format="json")
    href = created.json()["href"]
    response = api.patch(href, {"url": "https://example.test/v2/PULP_MANIFEST"}, format="json")
    assert response.status_code == 200
    remote = Remote.objects.get()
    assert remote.password == "pw" and remote.url.endswith("/v2/PULP_MANIFEST")
    response = api.patch(href, {"username": "", "password": ""}, format="json")
    assert response.status_code == 200 and not response.json()["has_password"]


def test_duplicate_name_is_400(api):
    api.post("/api/remotes/", remote_body(), format="json")
    response = api.post("/api/remotes/", remote_body(), format="json")
    assert response.status_code == 400 and "name" in response.json()


def test_delete_remote(api):
    href = api.post("/api/remotes/", remote_body(), format="json").json()["href"]
    assert api.delete(href).status_code == 204
    assert not Remote.objects.exists()


def test_sync_endpoint_queues_a_task_that_syncs(api, threaded_upstream):
    content = {f"f{i}.bin": os.urandom(3000) for i in range(4)}
    url = threaded_upstream.add_repo("repo", content)
    remote = api.post("/api/remotes/", remote_body(url=url), format="json").json()
    response = api.post(f"{remote['href']}sync/")
    assert response.status_code == 202
    task_href = response.json()["task"]
    assert task_href.startswith("http://testserver/api/tasks/")
    task = api.get(task_href).json()
    assert task["state"] == "completed", task
    assert task["progress"] == {"files_done": 4, "files_failed": 0, "files_total": 4,
                                "bytes_done": 12000, "bytes_total": 12000}
    assert task["summary"]["downloaded"] == 4 and task["remote"] == remote["href"]
    assert task["started"] and task["finished"]
    assert api.get(remote["href"]).json()["latest_task"] == task_href

    artifacts = api.get("/api/artifacts/").json()
    assert artifacts["count"] == 4
    wanted = sha256(content["f2.bin"])
    found = api.get("/api/artifacts/", {"sha256": wanted}).json()["results"]
    assert len(found) == 1 and found[0]["size"] == 3000
    by_512 = api.get("/api/artifacts/", {"sha512": found[0]["sha512"]}).json()
    assert by_512["count"] == 1
    content_list = api.get("/api/content/", {"remote": remote["id"], "relative_path": "f2.bin"}).json()
    assert content_list["count"] == 1 and content_list["results"][0]["artifact"] == found[0]["href"]
    tasks = api.get("/api/tasks/", {"state": "completed", "remote": remote["id"]}).json()
    assert tasks["count"] == 1


def test_second_sync_while_one_is_queued_is_409(api):
    remote = Remote.objects.create(name="busy", url="https://example.test/PULP_MANIFEST")
    waiting = SyncTask.objects.create(remote=remote)
    response = api.post(f"/api/remotes/{remote.pk}/sync/")
    assert response.status_code == 409
    assert response.json()["task"] == f"http://testserver/api/tasks/{waiting.pk}/"


def test_lists_are_paginated(api):
    for i in range(3):
        Remote.objects.create(name=f"r{i}", url="https://example.test/PULP_MANIFEST")
    page = api.get("/api/remotes/", {"limit": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]


def test_an_oversized_limit_is_capped_not_a_server_error(api):
    Remote.objects.bulk_create(
        Remote(name=f"r{i}", url="https://example.test/PULP_MANIFEST") for i in range(1001))
    response = api.get("/api/remotes/", {"limit": 2**63, "offset": 0})
    assert response.status_code == 200
    page = response.json()
    assert page["count"] == 1001 and len(page["results"]) == 1000
    assert "limit=1000" in page["next"] and "offset=1000" in page["next"]


def test_openapi_schema_and_docs_are_served(db):
    client = APIClient()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/remotes/{id}/sync/" in paths and "/api/tasks/{id}/" in paths
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_schema_and_docs_need_a_login_when_not_public(settings, api):
    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "PUBLIC_API_DOCS": False}
    anonymous = APIClient()
    assert anonymous.get("/api/schema/").status_code == 401
    assert anonymous.get("/api/docs/").status_code == 401
    assert api.get("/api/schema/").status_code == 200


@pytest.mark.parametrize("query,field", [
    ({"limit": -1}, "limit"), ({"limit": 0}, "limit"), ({"limit": "ten"}, "limit"),
    ({"offset": -5}, "offset"), ({"offset": "1e3"}, "offset"), ({"offset": "9" * 40}, "offset"),
])
def test_bad_pagination_parameters_are_400_naming_them(api, query, field):
    response = api.get("/api/remotes/", query)
    assert response.status_code == 400 and field in response.json()


def test_the_schema_states_nullable_fields_and_error_answers(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert schema["components"]["schemas"]["ContentUnit"]["properties"]["artifact"]["nullable"]
    sync = schema["paths"]["/api/remotes/{id}/sync/"]["post"]["responses"]
    assert {"202", "403", "404", "409"} <= set(sync)
    create = schema["paths"]["/api/remotes/"]["post"]["responses"]
    assert {"201", "400", "403"} <= set(create)
    limit = [p for p in schema["paths"]["/api/remotes/"]["get"]["parameters"]
             if p["name"] == "limit"][0]
    assert limit["schema"]["minimum"] == 1
