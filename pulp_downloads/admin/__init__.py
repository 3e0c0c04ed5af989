"""The Django admin: Remotes, tasks (syncs and repairs), Artifacts and content units."""
from django.contrib import admin

from . import artifacts, remotes, tasks  # noqa: F401 - register the ModelAdmins

admin.site.site_header = "pulp_downloads administration"
admin.site.site_title = "pulp_downloads"
admin.site.site_url = "/"
