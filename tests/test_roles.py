"""Every page, for every role: the role it needs gets in, the role below gets 403, and
someone not logged in is sent to the login page.

The pages are the URL resolver's (the API's are in tests/api/test_access.py): a new route
without a role declared here fails test_every_route_has_a_declared_role.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib import admin
from django.urls import URLResolver, get_resolver, reverse

from accounts.roles import ADMIN, EDITOR, ROLES, TRAINER, VIEWER
from identities.models import IdentifyBatch, Identity, Prediction
from identities.templatetags.faceweb import private_url
from identities.uploads import add_face_image, clean_image
from imports.models import BulkImport
from tests.identities.recorded import face, record
from tests.images import jpeg_bytes
from tests.imports.zips import people_zip
from training.models import ModelVersion, TrainingJob

pytestmark = pytest.mark.django_db

# Beside the four roles: anyone, even not logged in; any logged-in user, with a role or
# none; a superuser only (what no role's group has permissions for).
PUBLIC, SIGNED_IN, SUPERUSER = "public", "signed in", "superuser"
LADDER = (SIGNED_IN, *ROLES, SUPERUSER)


@dataclass(frozen=True)
class Page:
    role: str
    args: Callable = lambda t: []
    method: str = "get"
    status: int | None = None  # when allowed; default 200 for GET, 302 for POST
    query: Callable = lambda t: {}  # what a page needs picked first (people, photos)

    @property
    def allowed_status(self):
        return self.status or (200 if self.method == "get" else 302)


def slug(t):
    return [t["ada"].slug]


def pk(key):
    return lambda t: [t[key].pk]


PAGES = {
    "healthz": Page(PUBLIC),
    "readyz": Page(PUBLIC),
    "favicon": Page(PUBLIC, status=302),
    "login": Page(PUBLIC),
    "logout": Page(SIGNED_IN, method="post"),
    "accounts:profile": Page(SIGNED_IN),
    "accounts:token_create": Page(SIGNED_IN, method="post"),
    "accounts:token_revoke": Page(SIGNED_IN, method="post"),
    "identities:home": Page(VIEWER, status=302),
    "identities:identify": Page(VIEWER),
    "identities:prediction": Page(VIEWER, pk("prediction")),
    "identities:history": Page(VIEWER),
    "identities:batch": Page(VIEWER, pk("batch")),
    "identities:batch_status": Page(VIEWER, pk("batch")),
    "identities:batch_resume": Page(VIEWER, pk("batch"), "post"),
    "identities:list": Page(EDITOR),
    "identities:detail": Page(EDITOR, slug),
    "identities:edit": Page(EDITOR, slug),
    "identities:delete": Page(EDITOR, slug),
    "identities:split": Page(EDITOR, slug, query=lambda t: {"images": [t["image"].pk]}),
    "identities:move": Page(EDITOR, slug, query=lambda t: {"images": [t["image"].pk]}),
    "identities:export": Page(EDITOR, slug),
    "identities:merge": Page(EDITOR, query=lambda t: {"identities": [t["ada"].pk, t["bob"].pk]}),
    "identities:delete_people": Page(EDITOR, query=lambda t: {"identities": [t["ada"].pk]}),
    "identities:quality": Page(EDITOR),
    "identities:choose_face": Page(EDITOR, pk("image")),
    "identities:image_delete": Page(EDITOR, pk("image"), "post"),
    "identities:media": Page(EDITOR, lambda t: [t["image"].image.name]),
    "identities:review": Page(EDITOR),
    "identities:review_face": Page(EDITOR, pk("face"), "post"),
    "identities:review_bulk": Page(EDITOR, method="post"),
    "identities:review_undo": Page(EDITOR, method="post"),
    "identities:recent_names": Page(EDITOR),
    "identities:unknown_faces": Page(EDITOR),
    "imports:new": Page(EDITOR),
    "imports:detail": Page(EDITOR, pk("import")),
    "imports:status": Page(EDITOR, pk("import")),
    "imports:confirm": Page(EDITOR, pk("import"), "post"),
    "imports:rename": Page(EDITOR, pk("import"), "post"),
    "imports:discard": Page(EDITOR, pk("import"), "post"),
    "training:home": Page(TRAINER),
    "training:job": Page(TRAINER, pk("job")),
    "training:job_status": Page(TRAINER, pk("job")),
    "training:job_cancel": Page(TRAINER, pk("job"), "post"),
    "training:version_activate": Page(TRAINER, pk("version"), "post"),
    "training:version_delete": Page(TRAINER, pk("version"), "post"),
    # The admin site itself lets editors in; each model's pages then need the model
    # permissions of a role's group (ADMIN_MODELS).
    "admin:index": Page(EDITOR),
    "admin:app_list": Page(EDITOR, lambda t: ["identities"]),
    "admin:login": Page(PUBLIC),
    "admin:logout": Page(EDITOR, method="post"),
    "admin:password_change": Page(EDITOR),
    "admin:password_change_done": Page(EDITOR),
    "admin:jsi18n": Page(EDITOR),
    "admin:autocomplete": Page(EDITOR, status=403),
    "admin:view_on_site": Page(EDITOR, lambda t: [t["type"], t["ada"].pk], status=302),
}
# Every page of a model in the admin (list, add, change, delete, history) needs this role.
ADMIN_MODELS = {
    "identities_identity": EDITOR,
    "identities_faceimage": EDITOR,
    "training_trainingjob": TRAINER,
    "training_modelversion": TRAINER,
    "identities_prediction": ADMIN,
    "accounts_auditevent": ADMIN,
    "auth_user": ADMIN,
    "auth_group": ADMIN,
    "authtoken_tokenproxy": SUPERUSER,
}


def routes(resolver=None, namespace=""):
    """(name, pattern) of every route Django's URL resolver has, API and admin included."""
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from routes(pattern, inner)
        else:
            yield (namespace + pattern.name if pattern.name else None), (namespace, pattern)


def admin_model(name):
    """'identities_identity' for 'admin:identities_identity_changelist', else None."""
    for model in admin.site._registry:
        key = f"{model._meta.app_label}_{model._meta.model_name}"
        if name.startswith(f"admin:{key}_"):
            return key
    return None


def test_every_route_has_a_declared_role():
    undeclared, unnamed = [], []
    for name, (namespace, pattern) in routes():
        if namespace.startswith("api:"):
            continue  # tests/api/test_access.py
        if name is None:
            # The admin's own unnamed routes: its catch-all and its old-style change links.
            if namespace != "admin:":
                unnamed.append(str(pattern.pattern))
        elif name not in PAGES and admin_model(name) not in ADMIN_MODELS:
            undeclared.append(name)
    assert not unnamed, "name these routes and declare their role in PAGES"
    assert not undeclared, "declare the role these routes need in PAGES or ADMIN_MODELS"


def test_every_admin_model_has_a_declared_role():
    registered = {f"{m._meta.app_label}_{m._meta.model_name}" for m in admin.site._registry}
    assert registered == set(ADMIN_MODELS)


@pytest.fixture
def cast(make_user, django_user_model):
    users = {role: make_user(role) for role in ROLES}
    users[SIGNED_IN] = make_user(None)
    users[SUPERUSER] = django_user_model.objects.create_superuser("root", password="x")
    return users


@pytest.fixture
def things(cast, client):
    from django.contrib.contenttypes.models import ContentType
    from django.core.files.uploadedfile import SimpleUploadedFile

    ada, bob = Identity.objects.create(name="Ada"), Identity.objects.create(name="Bob")
    image = add_face_image(ada, clean_image(jpeg_bytes()))
    job = TrainingJob.objects.create()
    version = ModelVersion.objects.create(
        job=job, artifact="models/x.pt", sha256="0" * 64, architecture="resnet18",
        classes=[], dataset_hash="h",
    )  # fmt: skip
    prediction = record(cast[VIEWER], face(None, 0.2))
    batch = IdentifyBatch.objects.create(created_by=cast[VIEWER], source_name="team.zip")
    client.force_login(cast[EDITOR])
    archive = SimpleUploadedFile("people.zip", people_zip(2, 2), "application/zip")
    assert client.post(reverse("imports:new"), {"archive": archive}).status_code == 302
    client.logout()
    return {
        "ada": ada, "bob": bob, "image": image, "job": job, "version": version, "batch": batch,
        "prediction": prediction, "face": prediction.face_rows.get(),
        "import": BulkImport.objects.get(), "type": ContentType.objects.get_for_model(ada).pk,
    }  # fmt: skip


def request(client, name, page, things):
    url = reverse(name, args=page.args(things))
    return getattr(client, page.method)(url, page.query(things))


def refused(response, needed):
    if needed == SIGNED_IN:  # the one below is someone not logged in
        return response.status_code == 302 and "login" in response.url
    # The admin sends users who may not use it at all to its own login page (and those
    # who would log out of it to its index: they were never in).
    if response.status_code == 302:
        return response.url.startswith(reverse("admin:login")) or (
            response.url == reverse("admin:index")
        )
    return response.status_code == 403


def pages_and_admin_lists():
    yield from PAGES.items()
    for model, role in ADMIN_MODELS.items():
        yield f"admin:{model}_changelist", Page(role)


CHECKED = dict(pages_and_admin_lists())


@pytest.mark.parametrize("name", [n for n, page in CHECKED.items() if page.role != PUBLIC])
def test_the_needed_role_gets_in_and_the_one_below_does_not(client, cast, things, name):
    page = CHECKED[name]
    below = LADDER[LADDER.index(page.role) - 1] if page.role != SIGNED_IN else None
    if below is not None:
        client.force_login(cast[below])
    assert refused(request(client, name, page, things), page.role), below
    client.force_login(cast[page.role])
    assert request(client, name, page, things).status_code == page.allowed_status


@pytest.mark.parametrize("name", [n for n, page in PAGES.items() if page.role == PUBLIC])
def test_public_pages_open_to_anyone(client, things, name):
    assert request(client, name, PAGES[name], things).status_code == PAGES[name].allowed_status


@pytest.mark.parametrize("name", [n for n, page in CHECKED.items() if page.role != PUBLIC])
def test_someone_not_logged_in_is_sent_to_login(client, things, name):
    response = request(client, name, CHECKED[name], things)
    assert response.status_code == 302, name
    assert "login" in response.url, name


def test_home_takes_each_role_to_its_first_page(client, make_user):
    client.force_login(make_user("viewer"))
    assert client.get("/").url == reverse("identities:identify")
    client.force_login(make_user("editor"))
    assert client.get("/").url == reverse("identities:list")
    client.force_login(make_user(None))
    response = client.get("/")
    assert response.status_code == 403
    assert "no role yet" in response.content.decode()


def test_a_prediction_and_its_photo_are_for_the_one_who_asked_and_admins(client, make_user):
    owner, other, admin = make_user("viewer", "owner"), make_user("viewer"), make_user("admin")
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    name = default_storage.save("predictions/p.jpg", ContentFile(jpeg_bytes()))
    prediction = Prediction.objects.create(photo=name, created_by=owner, width=1, height=1)
    for user, allowed in ((owner, True), (admin, True), (other, False)):
        client.force_login(user)
        page = client.get(prediction.get_absolute_url()).status_code
        photo = client.get(private_url(prediction.photo)).status_code
        assert (page, photo) == ((200, 200) if allowed else (403, 404)), user
