"""The three groups operators assign, and the permissions each one holds.

Used by the data migration that creates the groups; kept here so the documentation, the
migration and the tests read one definition.
"""
from __future__ import annotations

APP_LABEL = "pulp_downloads"
#: Models whose permissions the roles cover.
MODELS = ("remote", "synctask", "artifact", "contentunit")

VIEWER = "remote viewer"
OPERATOR = "remote operator"
ADMINISTRATOR = "remote administrator"


def _all(model: str) -> list[str]:
    return [f"{action}_{model}" for action in ("view", "add", "change", "delete")]


#: Group name -> permission codenames (all of the ``pulp_downloads`` app).
ROLES: dict[str, list[str]] = {
    VIEWER: [f"view_{model}" for model in MODELS],
    OPERATOR: [f"view_{model}" for model in MODELS]
    + ["sync_remote", "cancel_synctask", "view_metrics"],
    ADMINISTRATOR: [codename for model in MODELS for codename in _all(model)]
    + ["sync_remote", "cancel_synctask", "repair_artifacts", "view_metrics"],
}


def ensure_role_groups(group_model, permission_model, *, missing_ok: bool = False) -> None:
    """Create the role groups that are missing and give each its permissions.

    Takes the models as arguments so that a migration can pass its historical ones. The
    app's permissions must exist already, except with ``missing_ok`` (a migration, which
    runs before later migrations add permissions; ``post_migrate`` then gives those).
    """
    for name, codenames in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=name)
        permissions = permission_model.objects.filter(
            content_type__app_label=APP_LABEL, codename__in=codenames
        )
        missing = set(codenames) - set(permissions.values_list("codename", flat=True))
        if missing and not missing_ok:
            raise RuntimeError(f"permissions missing for group {name!r}: {sorted(missing)}")
        group.permissions.add(*permissions)
