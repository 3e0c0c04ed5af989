"""The auth flow as a unit: it yields requests and receives answers, and knows nothing of
sessions or the download context. Driven here by hand, and by a bare aiohttp session
against a real loopback server."""
from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from pulp_downloads.download import NotAuthorized, Secret, TokenError
from pulp_downloads.download.auth import (MAX_TOKEN_ANSWER, AuthRequest, AuthResponse,
                                          RemoteAuth)
from pulp_downloads.download.origins import TrustedOrigins

from .upstream import sha256

SERVER = "https://registry.test/v2/"
REALM = "https://auth.test/token"
CHALLENGE = f'Bearer realm="{REALM}",service="registry.test",scope="repository:r:pull"'
BASIC = "Basic " + base64.b64encode(b"alice:wonder").decode()


def remote_auth(username: str = "alice", password: str = "wonder",
                trusted: tuple[str, ...] = (SERVER,)) -> RemoteAuth:
    return RemoteAuth(username, Secret(password), TrustedOrigins(trusted))


def answer(status: int, url: str = SERVER + "blob", sent: str | None = None,
           body: bytes | None = None, **headers: str) -> AuthResponse:
    return AuthResponse(status, url, CIMultiDictProxy(CIMultiDict(
        {name.replace("_", "-"): value for name, value in headers.items()})), sent, body)


def token_answer(token: str = "tok-1", expires_in: int = 300) -> AuthResponse:
    return answer(200, REALM, body=json.dumps({"token": token,
                                                "expires_in": expires_in}).encode())


async def test_a_request_goes_out_once_with_the_credentials_of_each_hop():
    flow = remote_auth().auth_flow(AuthRequest("GET", SERVER + "blob", {"Range": "bytes=5-"}))
    request = await anext(flow)
    assert (request.method, request.url, dict(request.headers)) == (
        "GET", SERVER + "blob", {"Range": "bytes=5-"})
    assert request.authorize(SERVER + "blob") == BASIC
    assert request.authorize("https://elsewhere.test/blob") is None  # a redirect elsewhere
    with pytest.raises(StopAsyncIteration):  # any answer but a challenge is the caller's
        await flow.asend(answer(200))


async def test_a_401_without_a_bearer_challenge_ends_the_flow():
    flow = remote_auth().auth_flow(AuthRequest("GET", SERVER + "blob"))
    await anext(flow)
    with pytest.raises(StopAsyncIteration):
        await flow.asend(answer(401, WWW_Authenticate='Basic realm="x"'))


async def test_a_bearer_challenge_fetches_a_token_then_sends_the_request_again():
    auth = remote_auth()
    flow = auth.auth_flow(AuthRequest("GET", SERVER + "blob"))
    await anext(flow)
    token_request = await flow.asend(answer(401, sent=BASIC, WWW_Authenticate=CHALLENGE))
    assert token_request.url == (f"{REALM}?service=registry.test"
                                 "&scope=repository%3Ar%3Apull")
    assert token_request.read_limit == MAX_TOKEN_ANSWER
    assert token_request.authorize(REALM) == BASIC  # a trusted origin named this realm
    assert token_request.authorize("https://other.test/token") is None
    again = await flow.asend(token_answer("tok-1"))
    assert again.url == SERVER + "blob"
    assert again.authorize(SERVER + "blob") == "Bearer tok-1"
    with pytest.raises(StopAsyncIteration):
        await flow.asend(answer(200))
    assert auth.token_requests == 1
    # Later requests to that origin send the token at once.
    assert auth.authorization(SERVER + "other") == "Bearer tok-1"


async def test_a_challenge_from_an_untrusted_origin_asks_for_a_token_anonymously():
    flow = remote_auth().auth_flow(AuthRequest("GET", "https://mirror.test/blob"))
    request = await anext(flow)
    assert request.authorize("https://mirror.test/blob") is None
    token_request = await flow.asend(answer(401, url="https://mirror.test/blob",
                                            WWW_Authenticate=CHALLENGE))
    assert token_request.authorize(REALM) is None


async def test_concurrent_flows_hitting_one_challenge_share_one_token_request():
    auth = remote_auth()
    first = auth.auth_flow(AuthRequest("GET", SERVER + "a"))
    second = auth.auth_flow(AuthRequest("GET", SERVER + "b"))
    await anext(first)
    await anext(second)
    token_request = await first.asend(answer(401, sent=BASIC, WWW_Authenticate=CHALLENGE))
    # The second waits for the first one's token rather than asking for its own.
    waiting = asyncio.ensure_future(second.asend(answer(401, url=SERVER + "b", sent=BASIC,
                                                        WWW_Authenticate=CHALLENGE)))
    await asyncio.sleep(0)
    assert not waiting.done()
    assert token_request.url.startswith(REALM)
    await first.asend(token_answer("shared"))
    again = await asyncio.wait_for(waiting, 5)
    assert again.url == SERVER + "b" and again.authorize(SERVER + "b") == "Bearer shared"
    assert auth.token_requests == 1


async def test_a_refused_token_is_fetched_anew_once():
    auth = remote_auth()
    flow = auth.auth_flow(AuthRequest("GET", SERVER + "blob"))
    await anext(flow)
    await flow.asend(answer(401, WWW_Authenticate=CHALLENGE))
    await flow.asend(token_answer("old"))
    flow = auth.auth_flow(AuthRequest("GET", SERVER + "blob"))
    await anext(flow)
    token_request = await flow.asend(answer(401, sent="Bearer old",
                                            WWW_Authenticate=CHALLENGE))
    assert token_request.url.startswith(REALM)  # not the token just refused
    again = await flow.asend(token_answer("new"))
    assert again.authorize(SERVER + "blob") == "Bearer new"
    assert auth.token_requests == 2


@pytest.mark.parametrize("token_reply,error,text", [
    (answer(401, REALM), NotAuthorized, "token request refused"),
    (answer(200, REALM, body=None), TokenError, f"more than {MAX_TOKEN_ANSWER} bytes"),
    (answer(200, REALM, body=b"<html>"), TokenError, "did not return JSON"),
    (answer(200, REALM, body=b'{"token": "a\\r\\nb"}'), TokenError, "control characters"),
])
async def test_an_unusable_token_answer_fails_the_flow(token_reply, error, text):
    flow = remote_auth().auth_flow(AuthRequest("GET", SERVER + "blob"))
    await anext(flow)
    await flow.asend(answer(401, WWW_Authenticate=CHALLENGE))
    with pytest.raises(error, match=text):
        await flow.asend(token_reply)


async def test_closing_a_flow_waiting_for_its_token_lets_the_next_one_ask():
    auth = remote_auth()
    flow = auth.auth_flow(AuthRequest("GET", SERVER + "blob"))
    await anext(flow)
    await flow.asend(answer(401, WWW_Authenticate=CHALLENGE))
    await flow.aclose()  # its driver failed sending the token request
    other = auth.auth_flow(AuthRequest("GET", SERVER + "blob"))
    await anext(other)
    token_request = await asyncio.wait_for(
        other.asend(answer(401, WWW_Authenticate=CHALLENGE)), 5)
    assert token_request.url.startswith(REALM)


async def test_a_bare_aiohttp_session_can_drive_the_flow_against_a_real_server(upstream):
    """No download context, no library session: the flow only says what to send."""
    upstream.bearer = {"token": "tok-123", "service": "registry.test", "scope": "repo:pull"}
    upstream.basic_auth = ("alice", "wonder")
    data = b"behind a token" * 100
    url = upstream.add("blobs/1", data)
    auth = remote_auth(trusted=(upstream.url,))
    flow = auth.auth_flow(AuthRequest("GET", url))
    async with aiohttp.ClientSession() as session:
        request = await anext(flow)
        while True:
            headers = dict(request.headers)
            sent = request.authorize(request.url) if request.authorize else None
            if sent:
                headers["Authorization"] = sent
            async with session.request(request.method, request.url, headers=headers) as got:
                body = await got.read() if request.read_limit else None
                reply = AuthResponse(got.status, str(got.url), got.headers, sent, body)
                try:
                    request = await flow.asend(reply)
                except StopAsyncIteration:
                    final = (got.status, await got.read())
                    break
    assert final == (200, data) and sha256(final[1]) == sha256(data)
    assert upstream.token_requests == 1 and auth.token_requests == 1
    assert [headers.get("Authorization") for _, path, headers in upstream.requests
            if path == "blobs/1"] == [BASIC, "Bearer tok-123"]
