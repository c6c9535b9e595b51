"""What every request and response passes through, whatever view serves it.

- Health probes answer before the host check: a container's own health check calls
  http://127.0.0.1:8000/healthz, a host that ALLOWED_HOSTS rightly does not list.
- A NUL byte in the path or the query is refused: PostgreSQL cannot store or compare one,
  so it would otherwise reach the database as a 500 from any filter or lookup.
- Under /api/ a 404 that no view made (an unmatched path) is the API's JSON error too.
- Security headers: a Content-Security-Policy, and no caching of pages that show people's
  data (photos set their own "private" caching).
"""

import secrets

from django.http import HttpResponseBadRequest, JsonResponse

from faceweb import health

PROBES = {"/healthz": health.healthz, "/readyz": health.readyz}

# The pages' own scripts and styles only: inline scripts only with the request's nonce, no
# third party, no plug-ins, no framing.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'nonce-{nonce}'",
        # The admin and the API docs set a few style attributes inline.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# The API docs page (Swagger UI) starts itself with an inline script.
DOCS_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    "script-src 'self' 'nonce-{nonce}'", "script-src 'self' 'unsafe-inline'"
)


def api_error(status, code, message):
    return JsonResponse({"error": {"code": code, "message": message, "details": {}}}, status=status)


class ProbeMiddleware:
    """Answer /healthz and /readyz first, before host checks, redirects and sessions."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        probe = PROBES.get(request.path_info)
        if probe is not None and request.method in ("GET", "HEAD"):
            return probe(request)
        return self.get_response(request)


class RequestHygieneMiddleware:
    """Refuse NUL bytes; JSON 404s under /api/; security and caching headers."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.csp_nonce = secrets.token_urlsafe(16)
        if self._has_nul(request):
            message = "The request holds a NUL character, which no path or field may hold."
            if request.path_info.startswith("/api/"):
                return api_error(400, "invalid", message)
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        response = self.get_response(request)
        unmatched = not response.get("Content-Type", "").startswith("application/json")
        if request.path_info.startswith("/api/") and response.status_code == 404 and unmatched:
            response = api_error(404, "not_found", "Not found.")
        self._add_headers(request, response)
        return response

    @staticmethod
    def _has_nul(request):
        if "\x00" in request.path_info:
            return True
        return any(
            "\x00" in key or "\x00" in "".join(values) for key, values in request.GET.lists()
        )

    @staticmethod
    def _add_headers(request, response):
        docs = request.path_info.startswith("/api/v1/docs")
        policy = DOCS_CONTENT_SECURITY_POLICY if docs else CONTENT_SECURITY_POLICY
        response.setdefault("Content-Security-Policy", policy.format(nonce=request.csp_nonce))
        # Pages and API answers show people's names, photos and results: kept by no cache,
        # the browser's included. Stored files say "private" themselves; static files are
        # served before this middleware (whitenoise) and are public.
        if "Cache-Control" not in response:
            response["Cache-Control"] = "no-store"
