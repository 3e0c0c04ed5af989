"""Create the "remote viewer", "remote operator" and "remote administrator" groups."""
from django.contrib.auth.management import create_permissions
from django.db import migrations

from pulp_downloads.roles import APP_LABEL, ROLES, ensure_role_groups


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make sure they exist now.
    app_config = apps.get_app_config(APP_LABEL)
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    # Permissions added by later migrations are given to the groups after migrate.
    ensure_role_groups(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"),
                       missing_ok=True)


def delete_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("pulp_downloads", "0006_permissions"),
    ]

    operations = [migrations.RunPython(create_groups, delete_groups)]
