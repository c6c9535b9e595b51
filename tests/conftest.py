import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.images import jpeg_bytes


@pytest.fixture(autouse=True)
def private_storage(settings, tmp_path):
    """Every test gets its own media and work folders."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FACEWEB_WORK_DIR = tmp_path / "work"
    settings.FACEWEB_PRETRAINED = "none"
    # A cache of this test's own (throttles, login lockouts), and a fast password hasher:
    # the real one would spend a second a test on the users it makes.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = settings.STORAGES | {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    }
    return settings.MEDIA_ROOT


@pytest.fixture
def make_user(django_user_model):
    """make_user(role) -> a user holding that role (None: no role at all)."""
    from accounts.roles import set_role

    def make(role, username=None):
        user = django_user_model.objects.create_user(
            username or f"{role or 'outsider'}-user", password="correct horse battery"
        )
        set_role(user, role)
        return user

    return make


@pytest.fixture
def member(make_user):
    """An editor: manages people and photos, and identifies."""
    return make_user("editor", "alice")


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client


@pytest.fixture
def upload():
    def make(name="photo.jpg", content=None, person=0, index=0):
        data = jpeg_bytes(person, index) if content is None else content
        return SimpleUploadedFile(name, data, content_type="image/jpeg")

    return make


def stored_files(root):
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
