"""The client's address, as login throttling and the API's throttles count it."""

from django.conf import settings


def client_address(request):
    """REMOTE_ADDR, or, when FACEWEB_TRUSTED_PROXIES says that many proxies stand in front
    (each appending to X-Forwarded-For), the address the outermost trusted proxy saw. Never
    the header alone: without a trusted proxy anyone can write it."""
    proxies = settings.FACEWEB_TRUSTED_PROXIES
    if proxies:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [a for a in forwarded if a]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")
