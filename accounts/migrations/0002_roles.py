from django.db import migrations

# Model permissions each role's group carries (each role also has those of the roles before
# it), so that the admin shows every role what it may do and nothing more.
ROLE_PERMISSIONS = {
    "viewer": [],
    "editor": [
        ("identities", "identity", ["view", "add", "change", "delete"]),
        ("identities", "faceimage", ["view", "change", "delete"]),
    ],
    "trainer": [
        ("training", "trainingjob", ["view"]),
        ("training", "modelversion", ["view", "change"]),
    ],
    "admin": [
        ("identities", "prediction", ["view", "delete"]),
        ("accounts", "auditevent", ["view"]),
        ("auth", "user", ["view", "add", "change", "delete"]),
        ("auth", "group", ["view"]),
    ],
}


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    inherited = []
    for role, grants in ROLE_PERMISSIONS.items():
        for app_label, model, actions in grants:
            inherited += [
                Permission.objects.get(
                    content_type__app_label=app_label, codename=f"{action}_{model}"
                )
                for action in actions
            ]
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(inherited)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("identities", "0001_initial"),
        ("training", "0001_initial"),
        ("accounts", "0001_audit"),
    ]
    operations = [migrations.RunPython(create_roles, remove_roles)]
