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


def _import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, wherever in the module (functions too)."""
    import ast

    package = ROOT / "pulp_downloads"
    paths = {}
    for path in package.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        here = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                for alias in node.names:  # a submodule, else a name of the module
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in paths else base)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        resolved = set()
        for target in targets:
            while target and target not in paths and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in paths and target != name:
                resolved.add(target)
        graph[name] = resolved
    return graph


def _part(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_the_package_has_no_import_cycle():
    graph = _import_graph()
    assert len(graph) > 50
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            assert state.get(target) != 1, "import cycle: " + " -> ".join(
                path[path.index(target):] + [target] if target in path else path + [target])
            if target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_imports_go_in_the_allowed_directions():
    graph = _import_graph()
    forbidden = {
        "download": lambda target: _part(target) != "download" and target != "pulp_downloads",
        "models": lambda target: _part(target) in ("storage", "sync", "download", "content",
                                                   "api"),
        "storage": lambda target: _part(target) in ("sync", "content", "api", "admin",
                                                    "tasks"),
        "sync": lambda target: _part(target) in ("content", "api", "admin", "tasks"),
    }
    wrong = [f"{module} imports {target}" for module, targets in graph.items()
             for target in targets
             if _part(module) in forbidden and forbidden[_part(module)](target)]
    assert wrong == []


def test_no_module_of_the_package_is_over_400_lines():
    long = {str(path.relative_to(ROOT)): lines for path in (ROOT / "pulp_downloads").rglob("*.py")
            if "migrations" not in path.parts
            and (lines := len(path.read_text().splitlines())) > 400}
    assert long == {}
