import mimetypes
import time

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from accounts import audit
from accounts.roles import EDITOR, VIEWER, has_role, role_required
from training import services

from . import batches, wording
from .duplicates import photos_of_others
from .forms import IdentifyForm, IdentityForm, PhotoUploadForm
from .models import FaceImage, IdentifyBatch, Identity, Prediction, PredictionFace
from .privacy import forget_identity, predictions_naming
from .recognitions import record_identification
from .results import NAMING_LEVELS, box_style, face_cards
from .uploads import (
    UploadError,
    add_uploaded_files,
    choose_face,
    clean_image,
    read_upload,
)

# Only files under these folders are ever served: enrolment photos to editors, a prediction's
# photo to the person who asked and to admins.
ENROLMENT_FOLDERS = ("faces/", "thumbs/", "crops/")
PREDICTION_FOLDER = "predictions/"
FACE_FOLDER = "prediction-faces/"  # one face of an identification, with some context


def home(request):
    if has_role(request.user, EDITOR):
        return redirect("identities:list")
    if has_role(request.user, VIEWER):
        return redirect("identities:identify")
    raise PermissionDenied("Your account has no role yet: ask an admin to give you one.")


@role_required(EDITOR)
def identity_list(request):
    form = IdentityForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        identity = form.save(commit=False)
        identity.created_by = request.user
        identity.save()
        audit.record(request.user, "identity.create", identity)
        messages.success(request, f"{identity.name} was added. Now upload a few photos.")
        return redirect(identity)
    identities = Identity.objects.with_photo_counts().order_by("name")
    return render(request, "identities/list.html", {"identities": identities, "form": form})


@role_required(EDITOR)
def identity_detail(request, slug):
    identity = get_object_or_404(Identity, slug=slug)
    form = PhotoUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        added, refused = add_uploaded_files(identity, form.cleaned_data["photos"], request.user)
        if added:
            audit.record(request.user, "photo.add", identity, count=len(added))
        _report_upload(request, added, refused)
        return redirect(identity)
    images = identity.images.select_related("source_face", "uploaded_by")
    unusable = sum(1 for image in images if not image.is_usable)
    context = {"identity": identity, "images": images, "unusable": unusable, "form": form}
    sources = [image.source_face.prediction_id for image in images if image.source_face]
    context["visible_predictions"] = visible_prediction_ids(request.user, sources)
    context["retrain"] = services.retrain_status()
    context["retrain_scheduled"] = bool(settings.FACEWEB_RETRAIN_SCHEDULE)
    return render(request, "identities/detail.html", context)


def _report_upload(request, added, refused):
    if added:
        messages.success(request, f"{wording.photos(len(added))} added.")
    for name, reason in refused:
        messages.error(request, f"{name}: {reason}")
    for image, other in photos_of_others(added):
        messages.warning(
            request,
            format_html(
                '{}: this photo is already one of <a href="{}">{}</a>\'s. It was added; if '
                "both are the same person, merge them, otherwise delete the wrong copy.",
                image.original_name or "A photo",
                other.identity.get_absolute_url(),
                other.identity.name,
            ),
        )


@role_required(EDITOR)
def identity_edit(request, slug):
    identity = get_object_or_404(Identity, slug=slug)
    form = IdentityForm(request.POST or None, instance=identity)
    if request.method == "POST" and form.is_valid():
        form.save()
        audit.record(request.user, "identity.change", identity, fields=form.changed_data)
        messages.success(request, "Saved.")
        return redirect(identity)
    return render(request, "identities/edit.html", {"identity": identity, "form": form})


@role_required(EDITOR)
def identity_delete(request, slug):
    identity = get_object_or_404(Identity, slug=slug)
    if request.method == "POST":
        name = identity.name
        deleted = forget_identity(identity, request.user)
        messages.success(request, f"{name}, their photos and identifications were deleted.")
        if deleted["versions"]:
            messages.warning(
                request,
                f"{name} was in the training data of "
                f"{wording.model_versions(len(deleted['versions']))}: their face is still "
                "inside those weights. Retrain, then delete the old versions.",
            )
            return redirect("training:home")
        return redirect("identities:list")
    context = {
        "identity": identity,
        "predictions": predictions_naming(identity).count(),
        "versions": services.versions_trained_on(identity.pk),
    }
    return render(request, "identities/delete.html", context)


@role_required(EDITOR)
def choose_face_view(request, pk):
    image = get_object_or_404(FaceImage.objects.select_related("identity"), pk=pk)
    if request.method == "POST":
        try:
            choose_face(image, int(request.POST.get("face", -1)))
        except (UploadError, ValueError):
            messages.error(request, "Pick one of the faces in the photo.")
        else:
            audit.record(request.user, "photo.choose_face", image)
            messages.success(request, "Thanks: this photo will be used for training.")
            return redirect(image.identity)
    faces = [box_style(c["box"], image.width, image.height) for c in image.candidates]
    return render(request, "identities/choose_face.html", {"image": image, "faces": faces})


@require_POST
@role_required(EDITOR)
def image_delete(request, pk):
    image = get_object_or_404(FaceImage, pk=pk)
    identity = image.identity
    audit.record(request.user, "photo.delete", image)
    image.delete()
    messages.success(request, "The photo was deleted.")
    return redirect(identity)


class _IdentifyScope:
    throttle_scope = "identify"


def identify_throttled(request):
    """Seconds to wait when this user has used up the identify rate, else None. The API's
    throttle (same scope, same cache key), so the page and the API share one budget."""
    from rest_framework.throttling import ScopedRateThrottle

    throttle = ScopedRateThrottle()
    if throttle.allow_request(request, _IdentifyScope()):
        return None
    return throttle.wait() or 1


@role_required(VIEWER)
def identify(request):
    form = IdentifyForm(request.POST or None, request.FILES or None)
    wait = identify_throttled(request) if request.method == "POST" else None
    if wait is not None:
        form = IdentifyForm()
        messages.error(request, f"Too many identifications; try again in {wait:.0f} seconds.")
    elif request.method == "POST" and form.is_valid():
        done = identify_from_form(form, request.user)
        if done is not None:
            return redirect(done)
    # The user's own, whoever else they may see (admins: everyone's, in the history).
    recent = Prediction.objects.filter(created_by=request.user)[:8]
    batches_ = IdentifyBatch.objects.filter(created_by=request.user)[:5]
    context = {"form": form, "recent": recent, "batches": batches_}
    context["version"] = services.active_version()
    context["inline_photos"] = settings.FACEWEB_IDENTIFY_INLINE_PHOTOS
    return render(
        request, "identities/identify.html", context, status=429 if wait is not None else 200
    )


def identify_from_form(form, user):
    """The Prediction (one photo) or IdentifyBatch (several, or a zip) made from a valid
    IdentifyForm; None, with the errors added to the form, when nothing was identified."""
    files = form.cleaned_data["photo"]
    strictness = form.cleaned_data["strictness"] or "normal"
    try:
        if len(files) == 1 and not batches.is_zip(files[0]):
            return identify_upload(files[0], user, strictness)
        batch, refused = batches.create_batch(files, user, strictness)
        if batch is None:
            for name, reason in refused:
                form.add_error("photo", f"{name}: {reason}")
            return None
        batches.start_batch(batch)
        return batch
    except (UploadError, batches.BatchRefused) as exc:
        form.add_error("photo", str(exc))
    except services.NoActiveModel as exc:
        form.add_error(None, str(exc))
    return None


def identify_upload(uploaded_file, user, strictness="normal"):
    """Validate, identify and record one photo; returns the Prediction.

    Raises UploadError or services.NoActiveModel, and stores nothing then.
    """
    started = time.perf_counter()
    clean = clean_image(read_upload(uploaded_file))
    result = services.identify(clean.image, strictness=strictness, with_embeddings=True)
    prediction = record_identification(clean.image, result, user, started, strictness)
    audit.record(user, "identify", prediction, faces=len(prediction.faces))
    return prediction


def prediction_detail(request, pk):
    prediction = get_object_or_404(Prediction.objects.select_related("model_version"), pk=pk)
    if not prediction.is_visible_to(request.user):
        raise PermissionDenied("This identification belongs to someone else.")
    rows = prediction.face_rows.select_related("reviewed_identity", "reviewed_by", "identity")
    faces, too_small = face_cards(prediction, {row.index: row for row in rows})
    context = {
        "prediction": prediction,
        "faces": faces,
        "too_small": too_small,
        "identities": Identity.objects.order_by("name") if has_role(request.user, EDITOR) else [],
        "naming": NAMING_LEVELS.get(prediction.strictness),
    }
    return render(request, "identities/prediction.html", context)


def visible_prediction_ids(user, prediction_ids):
    """Which of these identifications `user` may open, as a set of ids (one query): pages
    that show faces link to the whole photo only for those."""
    visible = Prediction.objects.visible_to(user).filter(pk__in=set(prediction_ids))
    return set(visible.values_list("pk", flat=True))


def media(request, path):
    """Serve a stored photo to someone allowed to see it (login is enforced by middleware)."""
    name = path.partition("/")[2]
    # One file directly inside one of the folders: never a folder itself, nothing deeper.
    if not name or "/" in name or name.startswith(".") or ".." in path:
        raise Http404("No such file.")
    if not path.startswith((*ENROLMENT_FOLDERS, PREDICTION_FOLDER, FACE_FOLDER)):
        raise Http404("No such file.")
    if path.startswith(PREDICTION_FOLDER):
        if not Prediction.objects.visible_to(request.user).filter(photo=path).exists():
            raise Http404("No such file.")
    elif path.startswith(FACE_FOLDER):
        if not can_see_face(request.user, path):
            raise Http404("No such file.")
    elif not has_role(request.user, EDITOR):
        raise PermissionDenied("Photos of people are for editors.")
    if not default_storage.exists(path):
        raise Http404("No such file.")
    return stored_file_response(path)


def can_see_face(user, name):
    """A face from an identification: for reviewers (editors), and whoever sees its photo."""
    faces = PredictionFace.objects.filter(face_crop=name)
    if not has_role(user, EDITOR):
        faces = faces.filter(prediction__in=Prediction.objects.visible_to(user))
    return faces.exists()


def stored_file_response(name):
    """Stream a stored file the caller has been allowed to see; private to the browser."""
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response
