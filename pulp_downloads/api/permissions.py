"""API permissions: Django's model permissions, reads included, plus per-action ones."""
from __future__ import annotations

from rest_framework.permissions import DjangoModelPermissions


class ModelPermissions(DjangoModelPermissions):
    """Model permissions for every method: reading needs ``view_<model>`` too.

    A view may name the permissions of its extra actions in ``action_permissions``
    (action name -> permission names, ``%(app_label)s`` and ``%(model_name)s`` expanded),
    e.g. ``{"sync": ["%(app_label)s.sync_remote"]}``; those replace the method's.
    """

    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        action_perms = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if action_perms is None:
            return super().has_permission(request, view)
        if not request.user or not request.user.is_authenticated:
            return False
        model = self._queryset(view).model
        kwargs = {"app_label": model._meta.app_label, "model_name": model._meta.model_name}
        return request.user.has_perms([perm % kwargs for perm in action_perms])
