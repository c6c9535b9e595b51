import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create the first admin account when there is none. The password comes from "
        "FACEWEB_ADMIN_PASSWORD or is generated and kept in the data folder (mode 600)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("FACEWEB_ADMIN_USER", "admin"))

    def handle(self, username, **options):
        users = get_user_model().objects
        password_file = settings.DATA_DIR / "admin_password.txt"
        if users.filter(is_superuser=True).exists():
            where = f" (first password in {password_file})" if password_file.exists() else ""
            self.stdout.write(f"an admin account exists already{where}")
            return
        password = os.environ.get("FACEWEB_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        users.create_superuser(username=username, email="", password=password)
        if not os.environ.get("FACEWEB_ADMIN_PASSWORD"):
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
        self.stdout.write(f"created admin account: user {username!r}, password {password!r}")
