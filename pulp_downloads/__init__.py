"""pulp_downloads: asyncio downloads from Remotes into content-addressed Artifacts."""
