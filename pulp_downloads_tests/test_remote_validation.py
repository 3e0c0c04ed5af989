"""Remote validation: one test per rule, each asserting the field the error is reported on."""
from __future__ import annotations

import pytest
import trustme
from django.core.exceptions import ValidationError

from pulp_downloads.download import DownloaderFactory, RemoteConfig
from pulp_downloads.models import Remote

pytestmark = pytest.mark.django_db


def make(**fields) -> Remote:
    fields.setdefault("name", "r1")
    fields.setdefault("url", "https://example.test/repo/PULP_MANIFEST")
    return Remote(**fields)


def errors_of(remote: Remote) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        remote.full_clean()
    return info.value.message_dict


def test_minimal_remote_is_valid_and_saves():
    remote = make()
    remote.save()
    assert Remote.objects.get(name="r1").policy == "immediate"
    assert remote.tls_validation is True


def test_save_validates_so_every_entry_point_shares_rules():
    with pytest.raises(ValidationError) as info:
        Remote.objects.create(name="bad", url="ftp://example.test/")
    assert "url" in info.value.message_dict
    assert not Remote.objects.filter(name="bad").exists()


@pytest.mark.parametrize("url", ["ftp://example.test/x", "gopher://h/", "example.test/x", ""])
def test_url_scheme_must_be_http_https_or_file(url):
    assert "url" in errors_of(make(url=url))


def test_url_with_embedded_credentials_is_refused_without_echoing_them():
    errors = errors_of(make(url="https://alice:s3cret@example.test/PULP_MANIFEST"))
    assert "url" in errors
    assert "s3cret" not in str(errors)


def test_proxy_url_with_embedded_credentials_is_refused():
    errors = errors_of(make(proxy_url="http://u:hunter2@127.0.0.1:3128"))
    assert "proxy_url" in errors
    assert "hunter2" not in str(errors)


@pytest.mark.parametrize("field", ["password", "bearer_token", "proxy_password"])
@pytest.mark.parametrize("value", ["s3cret\r\nX-Evil: 1", "s3cret\x00", "s3\x1bcret"])
def test_a_secret_with_control_characters_is_refused_naming_it_without_echoing_it(
        field, value):
    pairs = {"password": {"username": "u"},
             "proxy_password": {"proxy_username": "p", "proxy_url": "http://127.0.0.1:3128"}}
    errors = errors_of(make(**{field: value}, **pairs.get(field, {})))
    assert list(errors) == [field]
    assert "control characters" in errors[field][0]
    assert field.replace("_", " ") in errors[field][0]
    assert "s3cret" not in str(errors)


@pytest.mark.parametrize("field", ["password", "bearer_token", "proxy_password"])
def test_a_secret_is_stripped_of_surrounding_whitespace(field):
    pairs = {"password": {"username": "u"},
             "proxy_password": {"proxy_username": "p", "proxy_url": "http://127.0.0.1:3128"}}
    remote = make(**{field: " \ts3cret-token\r\n"}, **pairs.get(field, {}))
    remote.save()
    remote.refresh_from_db()
    assert getattr(remote, field) == "s3cret-token"


def test_a_secret_of_whitespace_only_is_no_secret():
    assert "password" in errors_of(make(username="u", password=" \n "))


def test_proxy_url_scheme_must_be_http_or_https():
    assert "proxy_url" in errors_of(make(proxy_url="socks5://127.0.0.1:1080"))


def test_mirror_urls_are_validated_each():
    errors = errors_of(make(mirrors=["https://ok.test/", "ftp://bad.test/"]))
    assert "mirrors" in errors
    assert "Mirror 2" in errors["mirrors"][0]


def test_a_file_mirror_of_an_http_remote_is_refused_naming_mirrors(file_roots):
    errors = errors_of(make(mirrors=["https://ok.test/repo/", (file_roots / "m").as_uri()]))
    assert list(errors) == ["mirrors"]
    assert errors["mirrors"] == [
        "Mirror 2 is a file:// URL, but url is an http(s) URL: a remote's mirrors must be of "
        "the same kind as its url (file://, or http(s))."]


def test_an_http_mirror_or_mirror_list_of_a_file_remote_is_refused(file_roots):
    errors = errors_of(make(url=(file_roots / "PULP_MANIFEST").as_uri(),
                            mirrors=[(file_roots / "m").as_uri() + "/", "http://m.test/r/"],
                            mirrorlist_url="https://list.test/mirrors"))
    assert errors["mirrors"] == [
        "Mirror 2 is an http(s) URL, but url is a file:// URL: a remote's mirrors must be of "
        "the same kind as its url (file://, or http(s))."]
    assert errors["mirrorlist_url"] == [
        "A mirror list names http(s) mirrors, which cannot serve a file:// url."]


def test_http_and_https_mirrors_mix_and_a_file_mirror_list_serves_an_http_remote(file_roots):
    make(mirrors=["http://a.test/r/", "https://b.test/r/"],
         mirrorlist_url=(file_roots / "mirrors.txt").as_uri()).full_clean()


def test_mirrors_must_be_a_list():
    assert "mirrors" in errors_of(make(mirrors={"a": 1}))


def test_mirrorlist_url_is_validated():
    assert "mirrorlist_url" in errors_of(make(mirrorlist_url="ftp://x.test/list"))


def test_username_without_password_is_reported_on_password():
    assert "password" in errors_of(make(username="alice"))


def test_password_without_username_is_reported_on_username():
    assert "username" in errors_of(make(password="pw"))


def test_proxy_username_without_proxy_password():
    errors = errors_of(make(proxy_url="http://127.0.0.1:3128", proxy_username="u"))
    assert "proxy_password" in errors


def test_proxy_password_without_proxy_username():
    errors = errors_of(make(proxy_url="http://127.0.0.1:3128", proxy_password="p"))
    assert "proxy_username" in errors


def test_proxy_credentials_need_a_proxy_url():
    assert "proxy_url" in errors_of(make(proxy_username="u", proxy_password="p"))


def test_ca_cert_must_be_pem(ca):
    assert "ca_cert" in errors_of(make(ca_cert="not a certificate"))
    make(ca_cert=ca.cert_pem.bytes().decode()).full_clean()


def test_ca_cert_accepts_a_bundle(ca):
    other = trustme.CA()
    bundle = ca.cert_pem.bytes().decode() + other.cert_pem.bytes().decode()
    make(ca_cert=bundle).full_clean()


def test_client_cert_must_be_pem(client_cert):
    key = client_cert.private_key_pem.bytes().decode()
    assert "client_cert" in errors_of(make(client_cert="garbage", client_key=key))


def test_client_key_must_be_pem_and_is_not_echoed(client_cert):
    cert = client_cert.cert_chain_pems[0].bytes().decode()
    secret = "-----BEGIN PRIVATE KEY-----\nTOPSECRETBYTES\n-----END PRIVATE KEY-----\n"
    errors = errors_of(make(client_cert=cert, client_key=secret))
    assert "client_key" in errors
    assert "TOPSECRETBYTES" not in str(errors)


def test_client_key_must_match_its_certificate(ca, client_cert):
    cert = client_cert.cert_chain_pems[0].bytes().decode()
    other_key = ca.issue_cert("other@example.test").private_key_pem.bytes().decode()
    errors = errors_of(make(client_cert=cert, client_key=other_key))
    assert "client_key" in errors
    assert "does not match" in errors["client_key"][0]


def test_matching_client_cert_and_key_are_valid(client_cert):
    make(
        client_cert=client_cert.cert_chain_pems[0].bytes().decode(),
        client_key=client_cert.private_key_pem.bytes().decode(),
    ).full_clean()


def test_client_cert_without_key_is_reported_on_client_key(client_cert):
    cert = client_cert.cert_chain_pems[0].bytes().decode()
    assert "client_key" in errors_of(make(client_cert=cert))


def test_client_key_without_cert_is_reported_on_client_cert(client_cert):
    key = client_cert.private_key_pem.bytes().decode()
    assert "client_cert" in errors_of(make(client_key=key))


def test_download_concurrency_must_be_positive():
    assert "download_concurrency" in errors_of(make(download_concurrency=0))
    make(download_concurrency=1).full_clean()


def config_of(remote: Remote) -> RemoteConfig:
    """What a factory of the site reads from ``remote`` (defaults and cap applied)."""
    return DownloaderFactory(remote, events=None).config


def test_download_concurrency_null_means_site_default(settings):
    remote = make(download_concurrency=None)
    remote.full_clean()
    assert config_of(remote).download_concurrency == settings.PULP_DOWNLOADS[
        "DEFAULT_DOWNLOAD_CONCURRENCY"
    ]


def test_a_factory_caps_the_download_concurrency_at_the_site_maximum(settings):
    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "MAX_DOWNLOAD_CONCURRENCY": 4,
                               "DEFAULT_DOWNLOAD_CONCURRENCY": 10}
    assert config_of(make(download_concurrency=None)).download_concurrency == 4
    assert config_of(make(download_concurrency=7)).download_concurrency == 4
    assert config_of(make(download_concurrency=3)).download_concurrency == 3


def test_max_retries_zero_means_a_single_attempt_not_the_default(settings):
    remote = make(max_retries=0)
    remote.full_clean()
    assert config_of(remote).max_retries == 0
    assert config_of(make(max_retries=None)).max_retries == settings.PULP_DOWNLOADS[
        "DEFAULT_MAX_RETRIES"]


def test_max_retries_must_not_be_negative():
    assert "max_retries" in errors_of(make(max_retries=-1))


def test_max_retries_has_a_maximum():
    assert errors_of(make(max_retries=101)) == {
        "max_retries": ["max_retries must be at most 100."]}
    make(max_retries=100).full_clean()


@pytest.mark.parametrize(
    "field", ["total_timeout", "connect_timeout", "sock_connect_timeout", "sock_read_timeout"]
)
def test_timeouts_must_be_more_than_zero(field):
    assert field in errors_of(make(**{field: -0.5}))
    assert "greater than 0" in " ".join(errors_of(make(**{field: 0}))[field])
    make(**{field: 0.5}).full_clean()
    make(**{field: None}).full_clean()


def test_rate_limit_has_a_floor():
    assert "rate_limit" in errors_of(make(rate_limit=0))
    assert "rate_limit" in errors_of(make(rate_limit=0.001))
    make(rate_limit=0.1).full_clean()
    make(rate_limit=2.5).full_clean()


def test_download_concurrency_is_capped_by_the_site(settings):
    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "MAX_DOWNLOAD_CONCURRENCY": 8}
    assert "At most 8" in " ".join(errors_of(make(download_concurrency=9))["download_concurrency"])
    make(download_concurrency=8).full_clean()


def test_policy_must_be_a_known_choice():
    assert "policy" in errors_of(make(policy="eventually"))


def test_name_is_unique():
    make().save()
    assert "name" in errors_of(make())


@pytest.mark.parametrize(
    "headers",
    [["X-A: 1"], {"Bad Header": "x"}, {"X-A\n": "x"}, {"X-A": "line\r\nInjected: 1"},
     {"X-A": 1}, {"Host": "x"}],
)
def test_headers_must_be_single_line_string_pairs(headers):
    assert "headers" in errors_of(make(headers=headers))


def test_headers_accept_plain_pairs():
    make(headers={"X-Token-Hint": "abc", "Accept": "*/*"}).full_clean()


def test_file_url_outside_allowed_roots_is_refused(file_roots, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    errors = errors_of(make(url=f"file://{outside}/PULP_MANIFEST"))
    assert "url" in errors
    assert "outside the directories allowed for file:// URLs" in errors["url"][0]
    assert str(file_roots) not in errors["url"][0]  # the site's roots are not revealed


def test_file_url_under_allowed_root_is_valid(file_roots):
    make(url=f"file://{file_roots}/repo/PULP_MANIFEST").full_clean()


def test_file_url_cannot_escape_its_root_with_dotdot(file_roots):
    errors = errors_of(make(url=f"file://{file_roots}/repo/../../etc/passwd"))
    assert "url" in errors


def test_file_url_cannot_escape_through_a_symlink(file_roots, tmp_path):
    (file_roots / "link").symlink_to(tmp_path)
    assert "url" in errors_of(make(url=f"file://{file_roots}/link/PULP_MANIFEST"))


def test_file_url_with_a_remote_host_is_refused(file_roots):
    assert "url" in errors_of(make(url=f"file://otherhost{file_roots}/PULP_MANIFEST"))


def test_file_urls_refused_when_no_root_is_allowed(settings):
    conf = dict(settings.PULP_DOWNLOADS, FILE_URL_ALLOWED_ROOTS=[])
    settings.PULP_DOWNLOADS = conf
    errors = errors_of(make(url="file:///tmp/PULP_MANIFEST"))
    assert "url" in errors


def test_secrets_do_not_leak_through_str_or_repr(client_cert):
    remote = make(
        username="alice", password="pw-SECRET-1",
        proxy_url="http://127.0.0.1:3128", proxy_username="p", proxy_password="pw-SECRET-2",
        client_cert=client_cert.cert_chain_pems[0].bytes().decode(),
        client_key=client_cert.private_key_pem.bytes().decode(),
    )
    remote.save()
    for text in (str(remote), repr(remote)):
        assert "SECRET" not in text
        assert "PRIVATE KEY" not in text


@pytest.mark.parametrize("name", ["a/b", "..", ".", "bad\x00name", " padded"])
def test_remote_names_must_fit_in_content_urls(name):
    assert "name" in errors_of(make(name=name))
