"""One shape for every API error: {"error": {"code": ..., "message": ..., "details": {...}}}.

Set as REST_FRAMEWORK["EXCEPTION_HANDLER"]. The domain's own exceptions (a refused upload,
no active model, too few photos to train) are mapped here, so views can let them rise.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from identities.uploads import UploadError
from training import services


class ApiError(exceptions.APIException):
    """An error with a message for people and details for programs."""

    def __init__(self, message=None, details=None, code=None):
        super().__init__(message, code)
        self.details = details or {}


class InvalidUpload(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "The file could not be used."
    default_code = "invalid_upload"


class Conflict(ApiError):
    """The request is fine but the state of things does not allow it now."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "This cannot be done now."
    default_code = "conflict"


class QueueUnavailable(ApiError):
    """The task queue (broker) is down: nothing was queued; the request can be repeated."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The task queue cannot be reached; try again in a moment."
    default_code = "queue_unavailable"


def as_api_exception(exc):
    """The APIException that stands for exc (exc itself when it already is one)."""
    if isinstance(exc, UploadError):
        return InvalidUpload(str(exc))
    if isinstance(exc, services.ModelUnavailable):
        return Conflict(str(exc), code="model_unavailable")
    if isinstance(exc, services.NoActiveModel):
        return Conflict(str(exc), code="no_active_model")
    if isinstance(exc, services.QueueUnavailable):
        return QueueUnavailable(str(exc))
    if isinstance(exc, services.NotEnoughData):
        return Conflict(str(exc), code="not_enough_data")
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied(*exc.args)
    return exc


def api_exception_handler(exc, context):
    exc = as_api_exception(exc)
    # DRF's handler adds WWW-Authenticate and Retry-After and rolls back atomic requests.
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = {"error": describe(exc)}
    return response


def describe(exc):
    """{"code", "message", "details"} for an APIException."""
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return {"code": "invalid", "message": first_message(details), "details": details}
    codes = exc.get_codes()
    details = getattr(exc, "details", {})
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        details = {"wait_seconds": exc.wait}
    return {
        "code": codes if isinstance(codes, str) else exc.default_code,
        "message": str(exc.detail),
        "details": details,
    }


def first_message(errors, field=None):
    """The first error in a (nested) serializer error structure, named after its field."""
    if not errors:
        return "The request is not valid."
    if isinstance(errors, dict):
        name, value = next(iter(errors.items()))
        return first_message(value, name if name != "non_field_errors" else field)
    if isinstance(errors, list):
        return first_message(errors[0], field)
    return f"{field}: {errors}" if field else str(errors)
