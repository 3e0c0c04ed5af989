"""Secrets follow the origin, every way a remote can move: a change of ``url``, ``mirrors``,
``mirrorlist_url`` or ``proxy_url`` that would send a stored secret somewhere new clears it
unless the same change gives it again, in the API, the admin and the command line. Hostile
loopback servers (an "origin" and a "proxy") record everything they receive."""
from __future__ import annotations

import base64
import io

import pytest
from django.core.management import call_command

from pulp_downloads.models import Remote
from pulp_downloads.models.headers import MASK

from .upstream import Recorder, running_threaded, status_fault

pytestmark = pytest.mark.django_db

ADMIN = "remote administrator"
BASIC = base64.b64encode(b"alice:pw-SECRET").decode()
PROXY_BASIC = base64.b64encode(b"proxyuser:proxypass").decode()

#: Each move: the field changed and its new value, which adds a place no secret went to.
MOVES = {
    "url": {"url": "https://evil.test/repo/PULP_MANIFEST"},
    "mirrors": {"mirrors": ["https://m1.test/repo/", "https://evil.test/repo/"]},
    "mirrorlist_url": {"mirrorlist_url": "https://evil.test/mirrors.txt"},
    "proxy_url": {"proxy_url": "http://evil.test:3128"},
}
#: Each secret: how the API shows it is set, and how a request gives it again.
SECRETS = {
    "password": lambda data: data["has_password"] and data["username"] == "alice",
    "bearer_token": lambda data: data["has_bearer_token"],
    "client_key": lambda data: data["has_client_key"] and bool(data["client_cert"]),
    "headers": lambda data: data["headers"] == {"X-Api-Key": MASK},
    "proxy_password": lambda data: data["has_proxy_password"] and data["proxy_username"] == "p",
}
ORIGIN_SECRETS = ("password", "bearer_token", "client_key", "headers")


@pytest.fixture
def api(api_client_for, db):
    return api_client_for(ADMIN)


@pytest.fixture
def tls(client_cert) -> dict:
    return {"client_cert": client_cert.cert_chain_pems[0].bytes().decode(),
            "client_key": client_cert.private_key_pem.bytes().decode()}


@pytest.fixture
def every_secret(tls) -> dict:
    return {"name": "r", "url": "https://one.test/repo/PULP_MANIFEST",
            "mirrors": ["https://m1.test/repo/"], "mirrorlist_url": "https://list.test/m.txt",
            "proxy_url": "http://proxy.test:3128", "proxy_username": "p",
            "proxy_password": "px-SECRET", "username": "alice", "password": "pw-SECRET",
            "bearer_token": "tok-SECRET", "headers": {"X-Api-Key": "key-SECRET"}, **tls}


def again(secret: str, tls: dict) -> dict:
    """The fields of a request that gives ``secret`` again."""
    return {"password": {"password": "pw-SECRET"}, "bearer_token": {"bearer_token": "tok-2"},
            "client_key": {"client_key": tls["client_key"]},
            "headers": {"headers": {"X-Api-Key": "key-2"}},
            "proxy_password": {"proxy_password": "px-2"}}[secret]


def left(data: dict) -> set[str]:
    return {secret for secret, is_set in SECRETS.items() if is_set(data)}


@pytest.mark.parametrize("move", MOVES)
def test_each_move_clears_every_secret_that_would_reach_the_new_place(api, every_secret, move):
    created = api.post("/api/remotes/", every_secret, format="json")
    assert created.status_code == 201, created.json()
    assert left(created.json()) == set(SECRETS)
    moved = api.patch(created.json()["href"], MOVES[move], format="json")
    assert moved.status_code == 200, moved.json()
    expected_left = set() if move == "proxy_url" else {"proxy_password"}
    assert left(moved.json()) == expected_left
    remote = Remote.objects.get(name="r")
    assert (remote.password, remote.bearer_token, remote.client_key, remote.headers) == (
        "", "", "", {})


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize("move", MOVES)
def test_a_secret_given_again_with_the_move_is_kept(api, every_secret, tls, move, secret):
    href = api.post("/api/remotes/", every_secret, format="json").json()["href"]
    moved = api.patch(href, {**MOVES[move], **again(secret, tls)}, format="json")
    assert moved.status_code == 200, moved.json()
    cleared = set(ORIGIN_SECRETS) | ({"proxy_password"} if move == "proxy_url" else set())
    assert left(moved.json()) == (set(SECRETS) - cleared) | {secret}


@pytest.mark.parametrize("change", [
    {"url": "https://one.test/other/PULP_MANIFEST"},
    {"mirrors": []},
    {"mirrors": ["https://m1.test/elsewhere/"]},
    {"mirrorlist_url": "https://one.test/mirrors.txt"},
    {"mirrorlist_url": ""},
    {"proxy_url": "http://proxy.test:3128/"},
    {"url": "https://m1.test/repo/PULP_MANIFEST", "mirrors": ["https://one.test/repo/"]},
])
def test_a_change_that_reaches_no_new_place_keeps_every_secret(api, every_secret, change):
    href = api.post("/api/remotes/", every_secret, format="json").json()["href"]
    changed = api.patch(href, change, format="json")
    assert changed.status_code == 200, changed.json()
    assert left(changed.json()) == set(SECRETS)


def test_a_masked_header_given_back_does_not_count_as_given_again(api, every_secret):
    href = api.post("/api/remotes/", every_secret, format="json").json()["href"]
    moved = api.patch(href, {"url": "https://evil.test/PULP_MANIFEST",
                             "headers": {"X-Api-Key": MASK}}, format="json")
    assert moved.status_code == 200 and moved.json()["headers"] == {}


def test_of_several_headers_only_those_given_again_survive_a_move(api):
    href = api.post("/api/remotes/", {
        "name": "h", "url": "https://one.test/PULP_MANIFEST",
        "headers": {"X-Api-Key": "key-SECRET", "X-Tenant": "blue"}}, format="json").json()["href"]
    moved = api.patch(href, {"url": "https://two.test/PULP_MANIFEST",
                             "headers": {"x-tenant": "blue"}}, format="json")
    assert moved.json()["headers"] == {"x-tenant": MASK}
    assert Remote.objects.get(name="h").headers == {"x-tenant": "blue"}


# --- the admin and the command line apply the same rule ---------------------------------------
def admin_form(remote: Remote, **overrides) -> dict:
    data = {"name": remote.name, "url": remote.url, "policy": remote.policy,
            "headers": "\n".join(f"{name}: {MASK}" for name in remote.headers),
            "mirrors": "\n".join(remote.mirrors), "tls_validation": "on",
            "username": remote.username, "password": "", "bearer_token": "",
            "proxy_url": remote.proxy_url, "proxy_username": remote.proxy_username,
            "proxy_password": "", "ca_cert": "", "client_cert": remote.client_cert,
            "client_key": "", "mirrorlist_url": remote.mirrorlist_url}
    data.update(overrides)
    return data


@pytest.mark.parametrize("move", MOVES)
def test_the_admin_clears_and_says_what_it_cleared(admin_client, every_secret, move):
    remote = Remote.objects.create(**every_secret)
    change = {field: "\n".join(value) if isinstance(value, list) else value
              for field, value in MOVES[move].items()}
    response = admin_client.post(f"/admin/pulp_downloads/remote/{remote.pk}/change/",
                                 admin_form(remote, **change), follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert ("cleared password, bearer token, client key, headers (X-Api-Key)"
            in page), page[:3000]
    assert ("proxy password" in page.split("cleared", 1)[1].split("which")[0]) == (
        move == "proxy_url")
    remote.refresh_from_db()
    assert (remote.password, remote.username, remote.bearer_token, remote.client_key,
            remote.client_cert, remote.headers) == ("", "", "", "", "", {})
    assert bool(remote.proxy_password) == (move != "proxy_url")


def test_the_admin_keeps_a_secret_typed_again_with_the_move(admin_client, every_secret):
    remote = Remote.objects.create(**every_secret)
    response = admin_client.post(
        f"/admin/pulp_downloads/remote/{remote.pk}/change/",
        admin_form(remote, proxy_url="http://evil.test:3128", bearer_token="tok-2",
                   proxy_password="px-2", headers="X-Api-Key: key-2"))
    assert response.status_code == 302
    remote.refresh_from_db()
    assert (remote.bearer_token, remote.proxy_password, remote.headers) == (
        "tok-2", "px-2", {"X-Api-Key": "key-2"})
    assert remote.password == "" and remote.client_key == ""


@pytest.mark.parametrize("move", MOVES)
def test_the_command_line_clears_and_prints_a_cleared_line(every_secret, move):
    Remote.objects.create(**every_secret)
    flag, value = {"url": ("--url", "https://evil.test/PULP_MANIFEST"),
                   "mirrors": ("--mirror", "https://evil.test/repo/"),
                   "mirrorlist_url": ("--mirrorlist-url", "https://evil.test/m.txt"),
                   "proxy_url": ("--proxy-url", "http://evil.test:3128")}[move]
    err = io.StringIO()
    call_command("remote", "update", "r", flag, value, stdout=io.StringIO(), stderr=err)
    expected = "Cleared password, bearer_token, client_key, headers (X-Api-Key)"
    if move == "proxy_url":
        expected += ", proxy_password"
    assert expected + ":" in err.getvalue()
    remote = Remote.objects.get(name="r")
    assert (remote.password, remote.bearer_token, remote.client_key, remote.headers) == (
        "", "", "", {})


def test_the_command_line_keeps_a_secret_given_again(every_secret, monkeypatch):
    Remote.objects.create(**every_secret)
    monkeypatch.setenv("KEY", "key-2")
    monkeypatch.setenv("TOKEN", "tok-2")
    err = io.StringIO()
    call_command("remote", "update", "r", "--url", "https://evil.test/PULP_MANIFEST",
                 "--header-env", "X-Api-Key=KEY", "--bearer-token-env", "TOKEN",
                 stdout=io.StringIO(), stderr=err)
    assert "Cleared password, client_key:" in err.getvalue()
    remote = Remote.objects.get(name="r")
    assert (remote.bearer_token, remote.headers) == ("tok-2", {"X-Api-Key": "key-2"})


# --- hostile servers: after each kind of move, no secret reaches them ---------------------------
@pytest.fixture
def hostile():
    """A recording server answering 401 with a Basic challenge: a hostile "origin"."""
    with running_threaded(Recorder(status=401)) as server:
        yield server


@pytest.fixture
def hostile_proxy():
    """A recording server answering 502 to everything: a hostile "proxy"."""
    with running_threaded(Recorder(status=502)) as server:
        yield server


CREDENTIALS = {
    "password": ({"username": "alice", "password": "pw-SECRET"}, f"Basic {BASIC}"),
    "bearer_token": ({"bearer_token": "tok-SECRET"}, "Bearer tok-SECRET"),
}


def leaked(received: str) -> list[str]:
    return [secret for secret in ("pw-SECRET", BASIC, "tok-SECRET", "key-SECRET", "proxypass",
                                  PROXY_BASIC) if secret in received]


def sync(api, href: str) -> dict:
    task = api.post(f"{href}sync/")
    assert task.status_code == 202, task.content
    return api.get(task.json()["task"]).json()


def honest_start(api, threaded_upstream, credential: str, **fields) -> str:
    """A remote on ``threaded_upstream`` with the ``credential`` and a header secret; its
    first sync shows the upstream receives them (so a leak would be seen)."""
    url = threaded_upstream.add_repo("repo", {"a.bin": b"a" * 100})
    body = {"name": "victim", "url": url, "max_retries": 0,
            "headers": {"X-Api-Key": "key-SECRET"}, **CREDENTIALS[credential][0], **fields}
    created = api.post("/api/remotes/", body, format="json")
    assert created.status_code == 201, created.json()
    assert sync(api, created.json()["href"])["state"] == "completed"
    sent = [headers for _, _, headers in threaded_upstream.requests]
    assert sent and all(h.get("Authorization") == CREDENTIALS[credential][1]
                        and h.get("X-Api-Key") == "key-SECRET" for h in sent)
    return created.json()["href"]


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.django_db(transaction=True)
def test_a_hostile_origin_as_the_new_url_receives_no_secret(
        api, threaded_upstream, hostile, credential):
    href = honest_start(api, threaded_upstream, credential)
    assert api.patch(href, {"url": hostile.url + "repo/PULP_MANIFEST"},
                     format="json").status_code == 200
    assert sync(api, href)["state"] == "failed"
    assert hostile.seen, "the hostile origin was asked"
    assert leaked(hostile.received()) == []


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.django_db(transaction=True)
def test_a_hostile_mirror_added_receives_no_secret(api, threaded_upstream, hostile, credential):
    href = honest_start(api, threaded_upstream, credential)
    threaded_upstream.add_repo("repo", {"b.bin": b"b" * 100})
    threaded_upstream.faults["repo/b.bin"].append(status_fault(503))  # fails over
    assert api.patch(href, {"mirrors": [hostile.url + "repo/"]},
                     format="json").status_code == 200
    sync(api, href)
    assert [target for _, target, _ in hostile.seen] == [hostile.url + "repo/b.bin"]
    assert leaked(hostile.received()) == []


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.django_db(transaction=True)
def test_a_hostile_mirror_list_receives_no_secret(api, threaded_upstream, hostile, credential):
    href = honest_start(api, threaded_upstream, credential)
    threaded_upstream.add_repo("repo", {"b.bin": b"b" * 100})
    assert api.patch(href, {"mirrorlist_url": hostile.url + "mirrors.txt"},
                     format="json").status_code == 200
    sync(api, href)
    assert hostile.url + "mirrors.txt" in [target for _, target, _ in hostile.seen]
    assert leaked(hostile.received()) == []


@pytest.mark.parametrize("credential", CREDENTIALS)
@pytest.mark.django_db(transaction=True)
def test_a_hostile_proxy_set_on_the_remote_receives_no_secret(
        api, threaded_upstream, hostile_proxy, credential):
    href = honest_start(api, threaded_upstream, credential)
    assert api.patch(href, {"proxy_url": hostile_proxy.url}, format="json").status_code == 200
    assert sync(api, href)["state"] == "failed"
    # A proxy is asked for the origin's URL itself (absolute form): it did relay the request.
    assert [target for _, target, _ in hostile_proxy.seen] == [
        threaded_upstream.url + "repo/PULP_MANIFEST"]
    assert leaked(hostile_proxy.received()) == []


@pytest.mark.django_db(transaction=True)
def test_a_hostile_proxy_replacing_the_real_one_receives_no_proxy_credentials(
        api, threaded_upstream, hostile_proxy, http_proxy):
    href = honest_start(api, threaded_upstream, "password", proxy_url=http_proxy,
                        proxy_username="proxyuser", proxy_password="proxypass")
    assert api.patch(href, {"proxy_url": hostile_proxy.url}, format="json").status_code == 200
    assert sync(api, href)["state"] == "failed"
    assert hostile_proxy.seen
    assert leaked(hostile_proxy.received()) == []
