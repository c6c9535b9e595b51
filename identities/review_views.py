"""History, Review, 'Do you know this person?', and a person's data export."""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts import audit
from accounts.roles import ADMIN, EDITOR, VIEWER, has_role, role_required

from .grouping import unknown_groups
from .models import Identity, Prediction, PredictionFace
from .privacy import export_identity
from .review import ReviewError, name_group, review_face
from .review_forms import HistoryFilterForm, NameGroupForm, ReviewForm

HISTORY_PAGE_SIZE = 25
REVIEW_PAGE_SIZE = 24


def visible_predictions(user):
    """Viewers see their own identifications; admins see everyone's."""
    predictions = Prediction.objects.select_related("created_by", "model_version")
    if has_role(user, ADMIN):
        return predictions
    return predictions.filter(created_by=user)


@role_required(VIEWER)
def history(request):
    everyone = has_role(request.user, ADMIN)
    predictions = visible_predictions(request.user)
    form = HistoryFilterForm(
        request.GET or None, can_see_everyone=everyone, visible=None if everyone else predictions
    )
    if form.is_bound and form.is_valid():
        predictions = form.filter(predictions)
    predictions = predictions.prefetch_related(
        "face_rows__identity", "face_rows__reviewed_identity", "face_rows__reviewed_by"
    )
    page = Paginator(predictions.order_by("-created_at", "-id"), HISTORY_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode(), "everyone": everyone}
    return render(request, "identities/history.html", context)


@role_required(EDITOR)
def review_inbox(request):
    below = settings.FACEWEB_REVIEW_BELOW_CONFIDENCE
    faces = PredictionFace.objects.to_review(below)
    page = Paginator(faces, REVIEW_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "below": below,
        "identities": Identity.objects.order_by("name"),
        "photos_kept": settings.FACEWEB_KEEP_PREDICTION_PHOTOS,
    }
    return render(request, "identities/review.html", context)


@require_POST
@role_required(EDITOR)
def review_face_view(request, pk):
    face = get_object_or_404(PredictionFace.objects.select_related("prediction", "identity"), pk=pk)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That person does not exist (any more): pick another.")
        return _back(request)
    data = form.cleaned_data
    try:
        face, image = review_face(
            face, data["decision"], request.user, data["identity"], data["new_name"]
        )
    except ReviewError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _reviewed_message(face, image))
    return _back(request)


def _reviewed_message(face, image):
    if face.review == PredictionFace.Review.REJECTED:
        return f"{face}: not anyone we know. It will not be offered again."
    learnt = " It was added to their photos for the next training." if image else ""
    return f"{face} is {face.reviewed_identity.name}.{learnt}"


def _back(request):
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return redirect(target)
    return redirect("identities:review")


@role_required(EDITOR)
def unknown_faces(request):
    groups = unknown_groups()
    face_ids = [face.pk for group in groups for face in group]
    form = NameGroupForm(request.POST or None, face_ids=face_ids)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        faces = PredictionFace.objects.filter(pk__in=data["faces"]).select_related("prediction")
        try:
            identity, named = name_group(faces, request.user, data["identity"], data["new_name"])
        except ReviewError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{named} face(s) added to {identity.name}'s photos.")
            return redirect("identities:unknown_faces")
    elif request.method == "POST":
        messages.error(request, " ".join(form.non_field_errors()) or "Pick faces of one person.")
    context = {"groups": groups, "identities": Identity.objects.order_by("name")}
    return render(request, "identities/unknown_faces.html", context)


@role_required(EDITOR)
def identity_export(request, slug):
    identity = get_object_or_404(Identity, slug=slug)
    audit.record(request.user, "identity.export", identity)
    response = StreamingHttpResponse(export_identity(identity), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{identity.slug}-data.zip"'
    response["Cache-Control"] = "private, no-store"
    return response
