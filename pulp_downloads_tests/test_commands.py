"""Management commands: sync_remote and remote."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from pulp_downloads.models import Artifact, Remote, SyncTask

from .upstream import status_fault

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_sync_remote_runs_in_process_and_prints_summary(threaded_upstream):
    url = threaded_upstream.add_repo("repo", {f"f{i}": os.urandom(2000) for i in range(5)})
    Remote.objects.create(name="cli", url=url)
    output = run("sync_remote", "cli", "--progress", "lines")
    assert "5 listed, 0 already present, 5 downloaded" in output
    assert [line for line in output.splitlines() if line.startswith("progress:")][-1] == \
        "progress: 5/5 files, 10.0 kB of 10.0 kB"
    assert "completed" in output
    assert Artifact.objects.count() == 5
    assert SyncTask.objects.get().state == "completed"


def test_sync_remote_shows_progress_bars_on_request(threaded_upstream, capsys):
    url = threaded_upstream.add_repo("repo", {"a": b"a" * 5000})
    Remote.objects.create(name="bar", url=url)
    run("sync_remote", "bar", "--progress", "bar")
    err = capsys.readouterr().err
    assert "files" in err and "bytes" in err and "1/1" in err


def test_sync_remote_failure_raises_with_failed_paths(threaded_upstream):
    url = threaded_upstream.add_repo("repo", {"good": b"g", "bad": b"b"})
    threaded_upstream.faults["repo/bad"].append(status_fault(404))
    Remote.objects.create(name="half", url=url, max_retries=0)
    with pytest.raises(CommandError) as info:
        run("sync_remote", "half", "--progress", "none")
    assert "1 of 2" in str(info.value) and "bad: HTTP 404" in str(info.value)


def test_sync_remote_unknown_name_exits_non_zero(subprocess_env):
    Remote.objects.create(name="known", url="https://example.test/PULP_MANIFEST")
    result = subprocess.run(
        [sys.executable, "manage.py", "sync_remote", "no-such-remote"], cwd=ROOT,
        capture_output=True, text=True, timeout=60, env=subprocess_env,
    )
    assert result.returncode == 1
    assert "No remote named 'no-such-remote' (known remotes: known)" in result.stderr
    assert "Traceback" not in result.stderr


def test_sync_remote_enqueue_prints_the_task_href(threaded_upstream):
    url = threaded_upstream.add_repo("repo", {"a": b"a"})
    Remote.objects.create(name="q", url=url)
    output = run("sync_remote", "q", "--enqueue")
    task = SyncTask.objects.get()
    assert output.strip() == f"/api/tasks/{task.pk}/"


def test_sync_remote_refuses_while_another_sync_is_active():
    remote = Remote.objects.create(name="busy", url="https://example.test/PULP_MANIFEST")
    SyncTask.objects.create(remote=remote, state="waiting")
    with pytest.raises(CommandError, match="already waiting"):
        run("sync_remote", "busy")


def test_remote_command_create_list_show_delete(monkeypatch):
    monkeypatch.setenv("REPO_PW", "pw-FROM-ENV")
    out = run("remote", "create", "cmd", "https://example.test/PULP_MANIFEST", "--policy",
              "on_demand", "--concurrency", "4", "--username", "u", "--password-env", "REPO_PW")
    assert "Created remote 'cmd'" in out
    remote = Remote.objects.get(name="cmd")
    assert (remote.policy, remote.download_concurrency, remote.password) == ("on_demand", 4, "pw-FROM-ENV")
    listed = run("remote", "list").splitlines()
    assert listed[0].split() == ["NAME", "POLICY", "URL", "LAST", "SYNC", "UNITS", "STORED"]
    assert listed[1].split() == ["cmd", "on_demand", "https://example.test/PULP_MANIFEST",
                                 "never", "0", "0"]
    shown = run("remote", "show", "cmd", "--json")
    assert "pw-FROM-ENV" not in shown and '"password": "(set)"' in shown
    run("remote", "delete", "cmd", "--yes")
    assert not Remote.objects.exists()


def test_remote_command_reports_invalid_fields():
    with pytest.raises(CommandError, match="URL: Unsupported URL scheme"):
        run("remote", "create", "bad", "ftp://example.test/")


def test_remote_command_refuses_max_retries_above_the_maximum(capsys):
    from pulp_downloads.management.commands.remote import Command

    Remote.objects.create(name="kept", url="https://example.test/PULP_MANIFEST")
    for argv in (["create", "many", "https://example.test/PULP_MANIFEST", "--max-retries",
                  "1025"], ["update", "kept", "--max-retries", "101"]):
        with pytest.raises(SystemExit) as exited:
            Command().run_from_argv(["manage.py", "remote", *argv])
        assert exited.value.code != 0
        assert "--max-retries: max_retries must be at most 100." in capsys.readouterr().err
    assert Remote.objects.get().name == "kept" and Remote.objects.get().max_retries is None


def test_remote_command_moving_to_a_new_origin_clears_the_password(monkeypatch):
    monkeypatch.setenv("REPO_PW", "pw-FROM-ENV")
    run("remote", "create", "mv", "https://one.test/PULP_MANIFEST", "--username", "u",
        "--password-env", "REPO_PW")
    err = io.StringIO()
    call_command("remote", "update", "mv", "--url", "https://two.test/PULP_MANIFEST",
                 stdout=io.StringIO(), stderr=err)
    assert "Cleared password" in err.getvalue()
    remote = Remote.objects.get(name="mv")
    assert remote.password == "" and remote.username == ""
    run("remote", "update", "mv", "--url", "https://three.test/PULP_MANIFEST", "--username", "u",
        "--password-env", "REPO_PW")
    assert Remote.objects.get(name="mv").password == "pw-FROM-ENV"


def test_sync_remote_json_and_quiet(threaded_upstream, capsys):
    import json

    url = threaded_upstream.add_repo("repo", {f"f{i}": os.urandom(2000) for i in range(3)})
    Remote.objects.create(name="machine", url=url)
    task = json.loads(run("sync_remote", "machine", "--json"))
    assert task["state"] == "completed" and task["remote_name"] == "machine"
    assert task["summary"]["downloaded"] == 3 and task["progress"]["files_done"] == 3
    assert task["href"] == f"/api/tasks/{task['id']}/"
    assert run("sync_remote", "machine", "--quiet") == ""
    err = capsys.readouterr().err
    assert "listed" not in err and "{'listed'" not in err  # no log line among the output


def test_sync_remote_enqueue_wait_follows_the_task_on_a_worker(
        threaded_upstream, subprocess_env, settings, tmp_path):
    from .test_task_faults import DB_BACKEND, start_worker

    settings.TASKS = DB_BACKEND
    url = threaded_upstream.add_repo("repo", {f"f{i}": os.urandom(3000) for i in range(4)})
    Remote.objects.create(name="queued", url=url)
    worker = start_worker(subprocess_env, tmp_path / "worker.log")
    try:
        output = run("sync_remote", "queued", "--wait", "--progress", "lines")  # --wait queues
    finally:
        worker.terminate()
        worker.wait(30)
    assert "queued: 4 listed, 0 already present, 4 downloaded" in output
    assert "progress: 4/4 files" in output and "completed" in output
    assert SyncTask.objects.get().worker != SyncTask.this_worker()  # it ran on the worker


def test_remote_list_shows_the_last_sync_and_counts(threaded_upstream):
    import json

    url = threaded_upstream.add_repo("repo", {f"f{i}": os.urandom(1000 + i) for i in range(3)})
    Remote.objects.create(name="synced", url=url)
    Remote.objects.create(name="later", url=url, policy="on_demand")
    run("sync_remote", "synced", "--quiet")
    rows = {line.split()[0]: line.split() for line in run("remote", "list").splitlines()[1:]}
    assert rows["synced"][3] == "completed" and rows["synced"][-2:] == ["3", "3"]
    assert rows["later"][3:] == ["never", "0", "0"]
    data = json.loads(run("remote", "list", "--json"))
    assert [row["name"] for row in data] == ["later", "synced"]
    assert data[1]["last_sync"] == "completed" and data[1]["stored"] == 3


def test_remote_create_and_update_set_every_field(monkeypatch, tmp_path, server_cert,
                                                  client_cert):
    import json

    ca = tmp_path / "ca.pem"
    ca.write_bytes(server_cert.cert_chain_pems[-1].bytes())
    cert = tmp_path / "client.pem"
    cert.write_bytes(client_cert.cert_chain_pems[0].bytes())
    key = tmp_path / "client.key"
    key.write_bytes(client_cert.private_key_pem.bytes())
    monkeypatch.setenv("PW", "pw-SECRET")
    monkeypatch.setenv("PROXY_PW", "proxy-SECRET")
    monkeypatch.setenv("TOKEN", "token-SECRET")
    out = run("remote", "create", "full", "https://one.test/repo/PULP_MANIFEST",
              "--policy", "streamed", "--verify-before-serve", "--no-tls-validation",
              "--ca-cert", str(ca), "--client-cert", str(cert), "--client-key", str(key),
              "--username", "u", "--password-env", "PW", "--bearer-token-env", "TOKEN",
              "--proxy-url", "http://127.0.0.1:3128", "--proxy-username", "p",
              "--proxy-password-env", "PROXY_PW",
              "--mirror", "https://m1.test/repo/", "--mirror", "https://m2.test/repo/",
              "--mirrorlist-url", "https://one.test/mirrors.txt",
              "--concurrency", "3", "--max-retries", "1", "--rate-limit", "5",
              "--max-bandwidth", "4000000",
              "--total-timeout", "60", "--connect-timeout", "5", "--sock-connect-timeout", "4",
              "--sock-read-timeout", "30", "--header", "X-Tenant: blue")
    assert out.strip() == "Created remote 'full'."
    remote = Remote.objects.get(name="full")
    assert (remote.policy, remote.verify_before_serve, remote.tls_validation) == (
        "streamed", True, False)
    assert "BEGIN CERTIFICATE" in remote.ca_cert and "PRIVATE KEY" in remote.client_key
    assert (remote.password, remote.bearer_token, remote.proxy_password) == (
        "pw-SECRET", "token-SECRET", "proxy-SECRET")
    assert remote.mirrors == ["https://m1.test/repo/", "https://m2.test/repo/"]
    assert (remote.download_concurrency, remote.max_retries, remote.rate_limit,
            remote.max_bandwidth) == (3, 1, 5.0, 4_000_000)
    assert (remote.total_timeout, remote.connect_timeout, remote.sock_connect_timeout,
            remote.sock_read_timeout) == (60.0, 5.0, 4.0, 30.0)
    assert remote.headers == {"X-Tenant": "blue"}

    shown = run("remote", "show", "full")
    assert "SECRET" not in shown and "PRIVATE KEY" not in shown
    lines = dict(line.split(None, 1) for line in shown.splitlines())
    assert lines["password"] == "(set)" and lines["mirrors"].startswith("https://m1.test/")
    assert json.loads(run("remote", "show", "full", "--json"))["download_concurrency"] == 3

    run("remote", "update", "full", "--policy", "on_demand", "--no-mirrors", "--no-headers",
        "--tls-validation", "--concurrency", "8")
    remote.refresh_from_db()
    assert (remote.policy, remote.mirrors, remote.headers, remote.tls_validation,
            remote.download_concurrency) == ("on_demand", [], {}, True, 8)
    assert remote.password == "pw-SECRET"  # untouched fields keep their values
    with pytest.raises(CommandError, match="exists; use 'remote update full'"):
        run("remote", "create", "full", "https://one.test/repo/PULP_MANIFEST")
    with pytest.raises(CommandError, match="--header 'oops': expected 'Name: value'"):
        run("remote", "update", "full", "--header", "oops")
    with pytest.raises(CommandError, match="environment variable NOPE is not set"):
        run("remote", "update", "full", "--password-env", "NOPE")
    with pytest.raises(CommandError, match="--ca-cert .*missing.pem: cannot read it"):
        run("remote", "update", "full", "--ca-cert", str(tmp_path / "missing.pem"))


def test_remote_create_and_update_help_describe_every_option(capsys):
    import argparse

    from pulp_downloads.management.commands.remote import Command

    parser = Command().create_parser("manage.py", "remote")
    subcommands = next(action for action in parser._actions
                       if isinstance(action, argparse._SubParsersAction)).choices
    for name in ("create", "update"):
        options = [action for action in subcommands[name]._actions if action.option_strings]
        assert len(options) > 20
        undescribed = [action.option_strings for action in options if not action.help]
        assert not undescribed, (name, undescribed)
    with pytest.raises(SystemExit):
        parser.parse_args(["update", "--help"])
    text = capsys.readouterr().out
    assert "--sock-read-timeout" in text and "Seconds without receiving a byte" in text


# --- remote: what people type, and what they get back -------------------------------------------
ISO_8601 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"


def test_remote_update_with_no_option_is_an_error():
    Remote.objects.create(name="same", url="https://example.test/PULP_MANIFEST")
    with pytest.raises(CommandError, match="Nothing to update: give at least one option"):
        run("remote", "update", "same")
    assert "Updated remote 'same'." in run("remote", "update", "same", "--no-mirrors")


def test_remote_errors_name_the_option_that_was_typed():
    with pytest.raises(CommandError) as info:
        run("remote", "create", "zero", "https://example.test/PULP_MANIFEST", "--concurrency", "0")
    assert "--concurrency: " in str(info.value) and "download_concurrency:" not in str(info.value)
    Remote.objects.create(name="kept", url="https://example.test/PULP_MANIFEST")
    with pytest.raises(CommandError, match="--url: Unsupported URL scheme"):
        run("remote", "update", "kept", "--url", "ftp://example.test/")
    with pytest.raises(CommandError, match="--max-bandwidth: "):
        run("remote", "update", "kept", "--max-bandwidth", "10")


def test_a_typo_in_a_subcommand_shows_that_subcommands_usage(capsys):
    from pulp_downloads.management.commands.remote import Command

    with pytest.raises(SystemExit) as exited:
        Command().run_from_argv(["manage.py", "remote", "create", "typo",
                                 "https://example.test/PULP_MANIFEST", "--concurency", "4"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: manage.py remote create [-h]"), err
    assert "manage.py remote create: error: unrecognized arguments: --concurency 4" in err
    with pytest.raises(CommandError, match=r"(?s)unrecognized arguments: --bogus.*usage: "
                                           r"remote update \[-h\]"):
        run("remote", "update", "typo", "--bogus")
    assert not Remote.objects.exists()


def test_every_positional_argument_has_help():
    import argparse

    from django.core.management import get_commands, load_command_class

    def parsers(parser):
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from parsers(sub)

    ours = [name for name, app in get_commands().items() if app == "pulp_downloads"]
    assert {"remote", "task", "sync_remote", "repair"} <= set(ours)
    undescribed = []
    for name in ours:
        top = load_command_class("pulp_downloads", name).create_parser("manage.py", name)
        for parser in parsers(top):
            undescribed += [f"{parser.prog} {action.dest}" for action in parser._actions
                            if not action.option_strings and not action.help]
    assert undescribed == []


def test_remote_delete_needs_yes_without_a_terminal(subprocess_env):
    Remote.objects.create(name="gone", url="https://example.test/PULP_MANIFEST")
    asked = subprocess.run([sys.executable, "manage.py", "remote", "delete", "gone"], cwd=ROOT,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=60, env=subprocess_env)
    assert asked.returncode == 1
    assert "there is no terminal to ask on; add --yes to delete it" in asked.stderr
    assert Remote.objects.filter(name="gone").exists()
    assert run("remote", "delete", "gone", "--yes").strip() == "Deleted remote 'gone'."
    assert not Remote.objects.exists()


def test_remote_delete_asks_on_a_terminal(subprocess_env):
    from pulp_downloads.models import ContentUnit

    from .terminal import Terminal

    remote = Remote.objects.create(name="asked", url="https://example.test/PULP_MANIFEST")
    for path in ("a", "b"):
        ContentUnit.objects.create(remote=remote, relative_path=path, sha256="0" * 64, size=1)
    prompt = "Delete remote 'asked' and its 2 content units? [y/N] "
    declined = Terminal("remote", "delete", "asked", env=subprocess_env)
    declined.expect(prompt)
    declined.type("\n")
    assert declined.finish() == 1
    assert "Remote 'asked' not deleted." in declined.text
    assert Remote.objects.filter(name="asked").exists()
    confirmed = Terminal("remote", "delete", "asked", env=subprocess_env)
    confirmed.expect(prompt)
    confirmed.type("y\n")
    assert confirmed.finish() == 0
    assert "Deleted remote 'asked'." in confirmed.text
    assert not Remote.objects.exists()


def test_json_outputs_have_iso_timestamps_and_hrefs_under_the_base_url(threaded_upstream,
                                                                       settings):
    import json
    import re

    url = threaded_upstream.add_repo("repo", {"a": b"a" * 10})
    remote = Remote.objects.create(name="dated", url=url)
    run("sync_remote", "dated", "--quiet")
    rows = json.loads(run("remote", "list", "--json"))
    assert re.fullmatch(ISO_8601, rows[0]["last_sync_at"]), rows[0]
    assert rows[0]["href"] == f"/api/remotes/{remote.pk}/"
    shown = json.loads(run("remote", "show", "dated", "--json"))
    assert re.fullmatch(ISO_8601, shown["created"]) and re.fullmatch(ISO_8601, shown["updated"])
    task = json.loads(run("sync_remote", "dated", "--json"))
    assert re.fullmatch(ISO_8601, task["created"]) and re.fullmatch(ISO_8601, task["finished"])
    assert task["href"].startswith("/api/tasks/")

    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "BASE_URL": "http://127.0.0.1:8000/"}
    site = "http://127.0.0.1:8000"
    assert json.loads(run("remote", "list", "--json"))[0]["href"] == \
        f"{site}/api/remotes/{remote.pk}/"
    assert json.loads(run("remote", "show", "dated", "--json"))["href"] == \
        f"{site}/api/remotes/{remote.pk}/"
    task = json.loads(run("sync_remote", "dated", "--json"))
    assert task["href"] == f"{site}/api/tasks/{task['id']}/"
    assert task["remote"] == f"{site}/api/remotes/{remote.pk}/"
    queued = run("sync_remote", "dated", "--enqueue").strip()
    assert queued.startswith(f"{site}/api/tasks/")


def test_a_base_url_that_is_not_a_site_is_refused(settings):
    from django.core.exceptions import ImproperlyConfigured

    from pulp_downloads.conf import app_settings

    for wrong in ("127.0.0.1:8000", "ftp://host/", "http://host/?q=1", "http://user:pw@host/"):
        settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "BASE_URL": wrong}
        with pytest.raises(ImproperlyConfigured, match="PULP_DOWNLOADS_BASE_URL must be"):
            app_settings()


def test_remote_list_says_when_the_last_sync_had_failed_files():
    from django.utils import timezone

    remote = Remote.objects.create(name="partial", url="https://example.test/PULP_MANIFEST")
    SyncTask.objects.create(remote=remote, state="completed", files_total=4, files_done=3,
                            files_failed=1, finished=timezone.now())
    line = run("remote", "list").splitlines()[1]
    assert "  completed, 1 failed 20" in line, line
    import json

    assert json.loads(run("remote", "list", "--json"))[0]["last_sync"] == "completed"
