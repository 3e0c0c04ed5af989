"""pulp_downloads: asyncio downloads from Remotes into content-addressed Artifacts."""

__version__ = "0.1.0"
