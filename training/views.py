from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts import audit
from accounts.roles import TRAINER, role_required

from . import services
from .forms import TrainForm
from .models import ModelVersion, TrainingJob


@role_required(TRAINER)
def training_home(request):
    services.reap_stale_jobs()
    form = TrainForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.start_training(user=request.user, **form.cleaned_data)
        except (services.NotEnoughData, ValueError) as exc:
            form.add_error(None, str(exc))
        else:
            audit.record(request.user, "training.start", job)
            messages.success(request, f"Training job #{job.pk} was queued.")
            return redirect(job)
    context = {
        "form": form,
        "not_ready": services.training_readiness(),
        "jobs": TrainingJob.objects.select_related("created_by")[:20],
        "versions": ModelVersion.objects.select_related("job")[:20],
    }
    return render(request, "training/home.html", context)


@role_required(TRAINER)
def job_detail(request, pk):
    services.reap_stale_jobs()
    job = get_object_or_404(TrainingJob, pk=pk)
    return render(request, "training/job.html", {"job": job})


@role_required(TRAINER)
def job_status(request, pk):
    """What the job page polls while the job runs."""
    services.reap_stale_jobs()
    job = get_object_or_404(TrainingJob, pk=pk)
    version = ModelVersion.objects.filter(job=job).first()
    return JsonResponse(
        {
            "id": job.pk,
            "status": job.status,
            "status_display": job.get_status_display(),
            "finished": job.is_finished,
            "progress": job.progress,
            "epochs": job.params.get("epochs"),
            "history": job.history,
            "error": job.error,
            "device": job.device,
            "model_version": version.pk if version else None,
        }
    )


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
    services.activate_version(version)
    audit.record(request.user, "version.activate", version)
    messages.success(request, f"Model {version} is now active.")
    return redirect("training:home")
