from django.conf import settings
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts import audit
from accounts.roles import TRAINER, role_required

from . import charts, services
from .forms import TrainForm
from .models import ModelVersion, TrainingJob


@role_required(TRAINER)
def training_home(request):
    services.reap_stale_jobs()
    form = TrainForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.start_training(user=request.user, **form.cleaned_data)
        except (services.NotEnoughData, services.QueueUnavailable, ValueError) as exc:
            form.add_error(None, str(exc))
        else:
            if job.already_started:
                messages.info(
                    request,
                    f"Training job #{job.pk} with these settings on the same photos is "
                    f"already {job.get_status_display().lower()}; here it is.",
                )
                return redirect(job)
            audit.record(request.user, "training.start", job)
            messages.success(request, f"Training job #{job.pk} was queued.")
            return redirect(job)
    context = {
        "form": form,
        "not_ready": services.training_readiness(),
        "jobs": TrainingJob.objects.select_related("created_by")[:20],
        "versions": ModelVersion.objects.select_related("job")[:20],
        "active": services.active_version(),
        "retrain": services.retrain_status(),
        "retrain_scheduled": bool(settings.FACEWEB_RETRAIN_SCHEDULE),
    }
    return render(request, "training/home.html", context)


@role_required(TRAINER)
def job_detail(request, pk):
    services.reap_stale_jobs()
    job = get_object_or_404(TrainingJob, pk=pk)
    version = ModelVersion.objects.filter(job=job).first()
    context = {"job": job, "version": version, "curves": charts.curves(job.history)}
    if version:
        context |= version_report(version)
    return render(request, "training/job.html", context)


def version_report(version):
    """Names, thumbnails and the heatmap for a version's evaluation metrics."""
    metrics = version.metrics
    names = {c["id"]: c["name"] for c in version.classes}
    image_ids = {m["image_id"] for m in metrics.get("mistakes", [])}
    images = services.face_images(image_ids)
    confused = [
        cell | {
            "true": names.get(cell["true_id"]),
            "predicted": names.get(cell["predicted_id"]),
            "images": [images[i] for i in cell["examples"] if i in images],
        }
        for cell in metrics.get("most_confused", [])
    ]  # fmt: skip
    mistakes = [
        m | {"true": names.get(m["true_id"]), "predicted": names.get(m["predicted_id"]),
             "image": images.get(m["image_id"])}
        for m in metrics.get("mistakes", [])
    ]  # fmt: skip
    heatmap = charts.confusion_heatmap(metrics.get("confusion", []), version.class_names)
    return {
        "per_identity": metrics.get("per_identity", []),
        "confused": confused,
        "mistakes": mistakes,
        "heatmap": heatmap if metrics.get("confusion") else "",
    }


@role_required(TRAINER)
def job_status(request, pk):
    """What the job page polls while the job runs."""
    services.reap_stale_jobs()
    job = get_object_or_404(TrainingJob, pk=pk)
    version = ModelVersion.objects.filter(job=job).first()
    return JsonResponse(
        {
            "id": job.pk,
            "curves": charts.curves(job.history),
            "eta_seconds": eta_seconds(job),
            "status": job.status,
            "status_display": job.get_status_display(),
            "finished": job.is_finished,
            "progress": job.progress,
            "epochs": job.params.get("epochs"),
            "history": job.history,
            "error": job.error,
            "device": job.device,
            "model_version": version.pk if version else None,
            "worker_silent_minutes": job.worker_silent_minutes,
            "warning": job.warning,
        }
    )


def eta_seconds(job):
    """Seconds left, from the mean epoch time so far; None before the first epoch ends."""
    if job.is_finished or not job.history:
        return None
    per_epoch = sum(row["seconds"] for row in job.history) / len(job.history)
    progress = job.progress or {}
    done = len(job.history)
    if progress.get("batches") and progress.get("epoch", 0) > done:
        done += progress["batch"] / progress["batches"]
    return round(max(0.0, (job.params.get("epochs", done) - done) * per_epoch))


@require_POST
@role_required(TRAINER)
def job_cancel(request, pk):
    job = get_object_or_404(TrainingJob, pk=pk)
    services.cancel_job(job)
    audit.record(request.user, "training.cancel", job)
    messages.info(request, "Cancelling: the job stops after its current batch.")
    return redirect(job)


@require_POST
@role_required(TRAINER)
def version_activate(request, pk):
    version = get_object_or_404(ModelVersion, pk=pk)
    try:
        services.activate_version(version)
    except services.ModelUnavailable as exc:
        messages.error(request, str(exc))
        return redirect("training:home")
    audit.record(request.user, "version.activate", version)
    messages.success(request, f"Model {version} is now active.")
    return redirect("training:home")


@require_POST
@role_required(TRAINER)
def version_delete(request, pk):
    version = get_object_or_404(ModelVersion, pk=pk)
    try:
        services.delete_version(version)
    except services.VersionInUse as exc:
        messages.error(request, str(exc))
        return redirect("training:home")
    audit.record(request.user, "version.delete", version, deleted_people=version.deleted_identities)
    messages.success(request, f"Model {version} and its file were deleted.")
    return redirect("training:home")
