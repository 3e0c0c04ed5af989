"""The download library stands on its own: no Django at import or run time."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_alone(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with no Django settings configured."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_importing_the_library_loads_no_django():
    done = run_alone("import pulp_downloads.download")
    assert done.returncode == 0, done.stderr
    loaded = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
              if line.startswith("import time:")]
    assert "pulp_downloads.download" in loaded
    assert not [name for name in loaded if name.split(".")[0] == "django"]


def test_a_download_runs_with_plain_settings_and_no_django(tmp_path):
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "a.bin").write_bytes(b"library" * 1000)
    code = f"""
import asyncio, hashlib, sys
from pathlib import Path
from aiohttp import web
from pulp_downloads.download import DownloaderFactory, LibrarySettings, RemoteConfig
from pulp_downloads.download.addresses import AddressPolicy

async def main():
    app = web.Application()
    app.router.add_static("/", {str(tmp_path / "served")!r})
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    settings = LibrarySettings(working_directory=Path({str(tmp_path)!r}),
                               address_policy=AddressPolicy((), ("127.0.0.0/8",)))
    data = b"library" * 1000
    try:
        async with DownloaderFactory(RemoteConfig(url=f"http://127.0.0.1:{{port}}/"),
                                     settings=settings) as factory:
            result = await factory.build(
                "a.bin", expected_digests={{"sha256": hashlib.sha256(data).hexdigest()}},
                expected_size=len(data)).run()
        assert Path(result.path).read_bytes() == data
        assert set(result.digests) == {{"sha224", "sha256", "sha384", "sha512"}}
    finally:
        await runner.cleanup()

asyncio.run(main())
django = sorted(name for name in sys.modules if name.split(".")[0] == "django")
print("django modules:", django)
sys.exit(1 if django else 0)
"""
    done = run_alone(code)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "django modules: []" in done.stdout
