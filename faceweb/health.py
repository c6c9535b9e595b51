"""Liveness and readiness probes for the proxy and the orchestrator (no login needed)."""

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.views.decorators.cache import never_cache


@login_not_required
@never_cache
def healthz(request):
    """The process answers HTTP."""
    return JsonResponse({"status": "ok"})


@login_not_required
@never_cache
def readyz(request):
    """The database, the broker and the storage answer, and a model is active.

    503 when any of the first three fails; a missing model is reported but does not make
    the service unready (a new deployment has none until its first training).
    """
    from faceweb.readiness import check_all

    checks = check_all()
    ready = all(check["ok"] for name, check in checks.items() if name != "model")
    return JsonResponse({"ready": ready, "checks": checks}, status=200 if ready else 503)
