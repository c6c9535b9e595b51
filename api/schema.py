"""The OpenAPI schema's view of every operation: drf-spectacular's, plus the error answers
each view can give, so that a client generated from the schema expects them."""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from .serializers import ErrorSerializer

ERRORS = {
    "400": "The request is not valid: `message` says why, `details` holds the field errors.",
    "401": "No credentials, or they are wrong: send `Authorization: Token <key>`.",
    "403": "The caller's role does not allow this.",
    "404": "There is no such object (or page), or it is not the caller's to see.",
    "429": "Too many requests: `details.wait_seconds` says when to try again.",
}


class ApiSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                answer = OpenApiResponse(ErrorSerializer, description=ERRORS[code])
                responses[code] = self._get_response_for_code(answer, code, direction=direction)
        return responses

    def _error_codes(self):
        # Every API view needs a role (api.permissions): 401 without a token, 403 below it.
        codes = ["401", "403"]
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            codes.append("400")
        # An id in the path may name nothing; a page number past the end is a 404 in DRF.
        if "{" in self.path or (self._is_list_view() and self._get_paginator()):
            codes.append("404")
        if getattr(self.view, "throttle_classes", None):
            codes.append("429")
        return codes
