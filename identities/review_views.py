"""History, Review, 'Do you know this person?', and a person's data export."""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from accounts import audit
from accounts.roles import ADMIN, EDITOR, VIEWER, has_role, role_required

from .grouping import unknown_groups
from .models import Identity, Prediction, PredictionFace
from .privacy import export_identity
from .review import (
    CONFIRM,
    REJECT,
    ReviewError,
    name_group,
    review_face,
    review_faces,
    undo_reviews,
)
from .review_forms import (
    BulkReviewForm,
    HistoryFilterForm,
    NameGroupForm,
    RecentNamesForm,
    ReviewForm,
)
from .views import visible_prediction_ids

HISTORY_PAGE_SIZE = 25
REVIEW_PAGE_SIZE = 24
DEFAULT_RECENT_DAYS = 7
RECENT_MAX_FACES = 300  # one screenful of groups; the most doubtful come first anyway
UNDO_KEY = "review_undo"  # the reviewer's last bulk answer, until undone or replaced


@role_required(VIEWER)
def history(request):
    everyone = has_role(request.user, ADMIN)  # offers the "who asked" filter
    predictions = Prediction.objects.visible_to(request.user)
    predictions = predictions.select_related("created_by", "model_version")
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
    context = _review_context(request, page.object_list) | {"page": page, "below": below}
    return render(request, "identities/review.html", context)


@role_required(EDITOR)
def recent_names(request):
    form = RecentNamesForm(request.GET or {"days": DEFAULT_RECENT_DAYS})
    days = form.cleaned_data["days"] if form.is_valid() else DEFAULT_RECENT_DAYS
    since = timezone.now() - timedelta(days=days)
    faces = list(PredictionFace.objects.named_since(since)[:RECENT_MAX_FACES])
    groups = {}
    for face in faces:  # most doubtful first, so each group's first face is its lowest
        groups.setdefault(face.identity, []).append(face)
    context = _review_context(request, faces) | {
        "form": form,
        "days": days,
        "groups": list(groups.items()),
        "count": len(faces),
        "capped": len(faces) == RECENT_MAX_FACES,
    }
    return render(request, "identities/recent_names.html", context)


def _review_context(request, faces):
    """What every review page needs besides its faces; visible_predictions: the faces'
    identifications whose whole photo this reviewer may open."""
    prediction_ids = [face.prediction_id for face in faces]
    return {
        "identities": Identity.objects.order_by("name"),
        "photos_kept": settings.FACEWEB_KEEP_PREDICTION_PHOTOS,
        "visible_predictions": visible_prediction_ids(request.user, prediction_ids),
        "undo": request.session.get(UNDO_KEY),
    }


@require_POST
@role_required(EDITOR)
def review_face_view(request, pk):
    face = get_object_or_404(PredictionFace.objects.select_related("prediction", "identity"), pk=pk)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_error(form))
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


@require_POST
@role_required(EDITOR)
def review_bulk(request):
    form = BulkReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_error(form))
        return _back(request)
    data, started = form.cleaned_data, timezone.now()
    try:
        target, answered, skipped = review_faces(
            data["faces"], data["decision"], request.user, data["identity"], data["new_name"]
        )
    except ReviewError as exc:
        messages.error(request, str(exc))
        return _back(request)
    created = target is not None and data["identity"] is None and target.created_at >= started
    request.session[UNDO_KEY] = {
        "faces": [face.pk for face in answered],
        "created": target.pk if created else None,
        "text": _bulk_message(data["decision"], target, len(answered), skipped),
    }
    return _back(request)


@require_POST
@role_required(EDITOR)
def review_undo(request):
    undo = request.session.pop(UNDO_KEY, None)
    if not undo:
        messages.error(request, "There is no answer to undo.")
        return _back(request)
    undone = undo_reviews(undo["faces"], request.user, undo.get("created"))
    messages.success(
        request,
        ngettext(
            "Undone: %(n)d face is back in review.",
            "Undone: %(n)d faces are back in review.",
            undone,
        )
        % {"n": undone},
    )
    return _back(request)


def _form_error(form):
    errors = form.non_field_errors() or [e for field in form.errors.values() for e in field]
    if "identity" in form.errors:
        return "That person does not exist (any more): pick another."
    return " ".join(errors) or "That answer could not be saved."


def _bulk_message(decision, target, answered, skipped):
    faces = ngettext("%(n)d face", "%(n)d faces", answered) % {"n": answered}
    if decision == REJECT:
        text = (
            f"{faces}: not anyone we know. They will not be offered again, and the next "
            "model refuses faces like them."
        )
    elif decision == CONFIRM:
        text = f"{faces} confirmed as the model named them; each became a training photo."
    else:
        text = f"{faces} named {target.name}; each became a training photo."
    if skipped:
        text += " " + ngettext(
            "%(n)d was skipped (already answered, or the model named nobody).",
            "%(n)d were skipped (already answered, or the model named nobody).",
            skipped,
        ) % {"n": skipped}
    return text


def _reviewed_message(face, image):
    if face.review == PredictionFace.Review.REJECTED:
        return (
            f"{face}: not anyone we know. It will not be offered again, and the next model "
            "refuses faces like it."
        )
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
            faces = ngettext("%(n)d face", "%(n)d faces", named) % {"n": named}
            messages.success(request, f"{faces} added to {identity.name}'s photos.")
            return redirect("identities:unknown_faces")
    elif request.method == "POST":
        messages.error(request, _form_error(form) if form.errors else "Pick faces of one person.")
    faces = [face for group in groups for face in group]
    context = _review_context(request, faces) | {"groups": groups}
    return render(request, "identities/unknown_faces.html", context)


@role_required(EDITOR)
def identity_export(request, slug):
    identity = get_object_or_404(Identity, slug=slug)
    audit.record(request.user, "identity.export", identity)
    response = StreamingHttpResponse(export_identity(identity), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{identity.slug}-data.zip"'
    response["Cache-Control"] = "private, no-store"
    return response
