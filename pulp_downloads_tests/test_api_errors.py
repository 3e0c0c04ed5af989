"""API errors: one JSON shape for every error answer (``{"detail": sentence}``, or each invalid
field with its messages), JSON 404s for ids that are not ids and unknown paths under /api/,
and a repair that names no remote (empty or unknown) refused."""
from __future__ import annotations

import jsonschema
import pytest
from rest_framework.test import APIClient

from pulp_downloads.api.errors import ERROR_SCHEMA
from pulp_downloads.models import Remote, SyncTask

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(api_client_for):
    return api_client_for("remote administrator")


def assert_error(response, status: int) -> dict:
    """``response`` is a JSON error of ``status`` in the documented shape."""
    assert response.status_code == status, response.content[:300]
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    jsonschema.validate(body, ERROR_SCHEMA)
    if status == 400 and "detail" not in body:  # invalid input: fields with messages
        assert body and all(messages for messages in body.values()), body
    else:
        assert body["detail"], body
    return body


@pytest.mark.parametrize("body,content_type", [
    ({"remote": ""}, "json"), ({"remote": ""}, "multipart"), ({"remote": "  "}, "json"),
    ({"remote": None}, "json"),
])
def test_a_repair_naming_an_empty_remote_is_400_and_queues_nothing(admin, body, content_type):
    answer = assert_error(admin.post("/api/repair/", body, format=content_type), 400)
    assert list(answer) == ["remote"] and "Name the remote" in answer["remote"][0]
    assert not SyncTask.objects.exists()


@pytest.mark.parametrize("content_type", ["json", "multipart"])
def test_a_repair_of_an_unknown_remote_is_400_naming_it(admin, content_type):
    answer = assert_error(admin.post("/api/repair/", {"remote": "nope"}, format=content_type),
                          400)
    assert answer == {"remote": ["No remote named 'nope'."]}
    assert not SyncTask.objects.exists()


@pytest.mark.parametrize("path", [
    "/api/remotes/{bad}/", "/api/remotes/{bad}/sync/", "/api/tasks/{bad}/",
    "/api/tasks/{bad}/cancel/", "/api/artifacts/{bad}/", "/api/content/{bad}/",
])
@pytest.mark.parametrize("bad", ["abc", "1.5e-10", "-1", "1.5", "%20", "9" * 40, "☃"])
def test_ids_that_are_not_ids_answer_a_json_404(admin, path, bad):
    method = admin.post if path.endswith(("sync/", "cancel/")) else admin.get
    assert_error(method(path.format(bad=bad)), 404)


def test_unknown_api_paths_answer_a_json_404_and_other_pages_stay_html(admin):
    for path in ("/api/nothing/", "/api/remotes/1/nothing/", "/api/remotes/x-y/"):
        assert assert_error(admin.get(path), 404) == {"detail": "Not found."}
    page = admin.get("/no-such-page/")
    assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html")


def test_every_kind_of_error_has_the_one_shape(admin, api_client_for):
    assert_error(APIClient().get("/api/remotes/"), 401)
    assert_error(api_client_for().get("/api/remotes/"), 403)
    assert_error(admin.get("/api/remotes/12345/"), 404)
    assert_error(admin.delete("/api/tasks/"), 405)
    parse = assert_error(admin.generic("POST", "/api/remotes/", "{not json",
                                       content_type="application/json"), 400)
    assert parse["detail"].startswith("JSON parse error")
    invalid = assert_error(admin.post("/api/remotes/", {"name": "", "url": "https://x.test/", "policy": "bogus"},
                                      format="json"), 400)
    assert set(invalid) == {"name", "policy"}
    whole = assert_error(admin.post("/api/remotes/", [1, 2], format="json"), 400)
    assert list(whole) == ["non_field_errors"]
    nested = assert_error(admin.post("/api/remotes/", {
        "name": "n", "url": "https://x.test/", "headers": {"X-A": ["not", "a string"]}},
        format="json"), 400)
    assert "headers" in nested  # nested field errors are flat strings too
    assert_error(admin.get("/api/remotes/", {"limit": "ten"}), 400)
    assert_error(admin.get("/api/tasks/", {"remote": "x"}), 400)
    remote = Remote.objects.create(name="busy", url="https://one.test/repo/PULP_MANIFEST")
    SyncTask.objects.create(remote=remote, state=SyncTask.State.WAITING)
    busy = assert_error(admin.post(f"/api/remotes/{remote.pk}/sync/"), 409)
    assert busy["task"].startswith("http://testserver/api/tasks/")
    done = SyncTask.objects.create(remote=remote, state=SyncTask.State.COMPLETED)
    assert_error(admin.post(f"/api/tasks/{done.pk}/cancel/"), 409)


def test_the_schema_documents_the_one_error_shape(admin):
    schema = admin.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    assert response["content"]["application/json"]["schema"] == ERROR_SCHEMA, (
                        method, path, status)
    assert "404" in schema["paths"]["/api/remotes/{id}/"]["get"]["responses"]


@pytest.mark.parametrize("path,parameter,value", [
    ("/api/artifacts/", "digest", "abc"),
    ("/api/artifacts/", "digest", "zz" * 32),  # sha256's length, not hex
    ("/api/artifacts/", "digest", "ab" * 33),  # hex of no algorithm's length
    ("/api/artifacts/", "sha256", "ab" * 20),  # sha1's length under sha256
    ("/api/artifacts/", "md5", "abc"),
    ("/api/content/", "sha256", "abc"),
])
def test_a_digest_filter_that_is_no_digest_is_400_naming_the_parameter(admin, path, parameter,
                                                                       value):
    answer = assert_error(admin.get(path, {parameter: value}), 400)
    assert list(answer) == [parameter] and "Enter a hex digest" in answer[parameter][0]


def test_digest_filters_take_any_case_and_find_nothing_for_an_unknown_digest(admin):
    from pulp_downloads.models import Artifact

    artifact = Artifact.objects.create(file="artifact/ab/cd", size=1, sha256="ab" * 32,
                                       sha512="cd" * 64)
    for query in ({"digest": "AB" * 32}, {"sha256": "Ab" * 32}, {"digest": "cd" * 64}):
        found = admin.get("/api/artifacts/", query)
        assert found.status_code == 200 and [a["id"] for a in found.json()["results"]] == [
            artifact.pk], query
    for query in ({"digest": "ab" * 20}, {"sha256": "00" * 32}, {"digest": ""}):
        found = admin.get("/api/artifacts/", query)
        assert found.status_code == 200, query
    assert admin.get("/api/artifacts/", {"digest": "ab" * 20}).json()["count"] == 0
    assert admin.get("/api/artifacts/", {"digest": ""}).json()["count"] == 1  # not filtered
    assert admin.get("/api/content/", {"sha256": "ab" * 32}).json()["count"] == 0
