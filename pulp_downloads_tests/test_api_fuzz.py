"""The OpenAPI schema, fuzzed (schemathesis): no 500s, no secret ever echoed back."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from settings.wsgi import application

SECRETS = ("pw-FUZZ-SECRET", "px-FUZZ-SECRET")
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture
def fuzz_data(django_db_setup, django_db_blocker):
    """A user and a remote with secrets, committed so the WSGI app sees them."""
    from django.contrib.auth.models import User

    from pulp_downloads.models import Remote

    with django_db_blocker.unblock():
        from rest_framework.authtoken.models import Token

        User.objects.filter(username="fuzzer").delete()
        user = User.objects.create_superuser("fuzzer", password="fuzz-pass")
        Token.objects.create(user=user, key=TOKEN)
        Remote.objects.filter(name="fuzz-target").delete()
        Remote.objects.create(
            name="fuzz-target", url="https://example.test/PULP_MANIFEST", username="u",
            password=SECRETS[0], proxy_url="http://127.0.0.1:3128", proxy_username="p",
            proxy_password=SECRETS[1],
        )
        yield
        User.objects.filter(username="fuzzer").delete()
        Remote.objects.all().delete()


@schemathesis.check
def no_secret_echoed(ctx, response, case):
    body = response.text or ""
    for secret in SECRETS:
        if secret in body:
            raise AssertionError(f"secret {secret!r} appears in the response")


TOKEN = "f" * 40
AUTH = {"Authorization": f"Token {TOKEN}"}


@pytest.mark.django_db(transaction=True)
@schema.exclude(path_regex=r".*/sync/$").parametrize()
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_api_never_fails_or_leaks(case, fuzz_data):
    response = case.call(headers=AUTH)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
    case.validate_response(response, checks=[no_secret_echoed])
