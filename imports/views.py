"""Bulk enrolment pages: drop a zip or choose a folder, check the preview, confirm, watch."""

from django.conf import settings
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.roles import EDITOR, role_required
from identities import wording

from . import services
from .forms import ZipImportForm
from .models import BulkImport, ImportFile

# The preview and result pages list at most this many files; the rest are counted.
LISTED_FILES = 300


@role_required(EDITOR)
def new_import(request):
    form = ZipImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        try:
            bulk = prepare_from_request(request, form)
        except services.ArchiveRefused as exc:
            form.errors.clear()
            form.add_error(None, str(exc))
        else:
            if bulk is not None:
                return redirect(bulk)
    services.purge_stale_previews()
    recent = BulkImport.objects.select_related("created_by")[:10]
    context = {
        "form": form,
        "recent": recent,
        "max_folder": settings.FACEWEB_IMPORT_MAX_FOLDER_FILES,
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "imports/new.html", context, status=status)


def prepare_from_request(request, form):
    """A previewed BulkImport from a folder (files + paths) or a zip; None if the form is
    invalid. Raises ArchiveRefused."""
    files = request.FILES.getlist("files")
    if files:
        return services.prepare_folder(files, request.POST.getlist("paths"), request.user)
    if form.is_valid():
        return services.prepare_zip(form.cleaned_data["archive"], request.user)
    return None


@role_required(EDITOR)
def import_detail(request, pk):
    bulk = services.stop_if_stale(get_object_or_404(BulkImport, pk=pk))
    files = bulk.files.select_related("face_image")
    if bulk.status == BulkImport.Status.PREVIEW:
        problems = files.exclude(state=ImportFile.State.PENDING)
    else:
        problems = files.exclude(state=ImportFile.State.PENDING).exclude(
            state=ImportFile.State.ADDED, reason=""
        )
    context = {
        "bulk": bulk,
        "progress": services.progress(bulk),
        "problems": problems[:LISTED_FILES],
        "problem_count": problems.count(),
        "new_people": sum(1 for p in bulk.people if not p["identity_id"]),
        "existing_people": sum(1 for p in bulk.people if p["identity_id"]),
        "can_tidy": any(p.get("tidy", p["name"]) != p["name"] for p in bulk.people),
    }
    return render(request, "imports/detail.html", context)


@require_POST
@role_required(EDITOR)
def import_rename(request, pk):
    bulk = get_object_or_404(BulkImport, pk=pk)
    names = request.POST.getlist("name")
    if "tidy" in request.POST:  # the "turn _ and . into spaces" button
        names = [services.tidy_name(name) for name in names]
    renames = dict(zip(request.POST.getlist("current"), names, strict=False))
    try:
        renamed = services.rename_people(bulk, renames, request.user)
    except services.RenameRefused as exc:
        messages.error(request, str(exc))
    else:
        done = f"{wording.people(renamed)} renamed." if renamed else "No name changed."
        messages.success(request, done)
    return redirect(bulk)


@require_POST
@role_required(EDITOR)
def import_confirm(request, pk):
    bulk = get_object_or_404(BulkImport, pk=pk)
    try:
        started = services.confirm_import(bulk, request.user)
    except services.QueueUnavailable as exc:
        messages.error(request, str(exc))
        return redirect(bulk)
    if started:
        messages.success(request, "The import has started; you can leave this page.")
    else:
        messages.error(request, "This import has already been started.")
    return redirect(bulk)


@require_POST
@role_required(EDITOR)
def import_discard(request, pk):
    bulk = get_object_or_404(BulkImport, pk=pk)
    if services.discard_import(bulk, request.user):
        messages.success(request, "Nothing was imported; the zip was thrown away.")
        return redirect("imports:new")
    messages.error(request, "An import that is running or finished cannot be thrown away.")
    return redirect(bulk)


@role_required(EDITOR)
def import_status(request, pk):
    bulk = services.stop_if_stale(get_object_or_404(BulkImport, pk=pk))
    data = services.progress(bulk) | {
        "status": bulk.status,
        "status_display": bulk.get_status_display(),
        "finished": bulk.is_finished,
        "error": bulk.error,
    }
    return JsonResponse(data)
