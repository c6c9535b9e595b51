"""The page of a batch of photos being identified: progress, then one row per photo."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.roles import VIEWER, role_required

from . import batches
from .models import BatchPhoto, IdentifyBatch


def visible_batch(request, pk):
    """The batch, for the person who sent it and for admins; PermissionDenied otherwise."""
    batch = get_object_or_404(IdentifyBatch.objects.select_related("created_by"), pk=pk)
    if not IdentifyBatch.objects.visible_to(request.user).filter(pk=pk).exists():
        raise PermissionDenied("These photos were sent by someone else.")
    return batches.stop_if_stale(batch)


@role_required(VIEWER)
def batch_detail(request, pk):
    batch = visible_batch(request, pk)
    refused = batch.photos.filter(state=BatchPhoto.State.REFUSED)
    context = {
        "batch": batch,
        "progress": batches.progress(batch),
        "rows": batches.result_rows(batch) if batch.is_finished else [],
        "refused": refused,
        "below": settings.FACEWEB_REVIEW_BELOW_CONFIDENCE,
    }
    return render(request, "identities/batch.html", context)


@role_required(VIEWER)
def batch_status(request, pk):
    batch = visible_batch(request, pk)
    data = batches.progress(batch) | {
        "status": batch.status,
        "status_display": batch.get_status_display(),
        "finished": batch.is_finished,
        "error": batch.error,
    }
    return JsonResponse(data)


@require_POST
@role_required(VIEWER)
def batch_resume(request, pk):
    batch = visible_batch(request, pk)
    if batch.status != IdentifyBatch.Status.FAILED or not batches.start_batch(batch):
        messages.error(request, "Only stopped batches can be resumed.")
    return redirect(batch)
