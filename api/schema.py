"""The OpenAPI schema's view of every operation: drf-spectacular's, plus the error answers
each view can give, so that a client generated from the schema expects them."""

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
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
        # Any request may be refused as malformed (a NUL character in a query string is, by
        # accounts.middleware); every API view needs a role (api.permissions): 401 without
        # a token, 403 below it.
        codes = ["400", "401", "403"]
        # An id in the path may name nothing; a page number past the end is a 404 in DRF.
        if "{" in self.path or (self._is_list_view() and self._get_paginator()):
            codes.append("404")
        if getattr(self.view, "throttle_classes", None):
            codes.append("429")
        return codes


class InRangeExtension(OpenApiSerializerFieldExtension):
    """States the range of an api.serializers.InRange field, open ends included (DRF's own
    min_value and max_value would check it here, with another message than training's)."""

    target_class = "api.serializers.InRange"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if schema.get("type") == "integer" and self.target.range["maximum"] >= 2**31:
            schema["format"] = "int64"  # a generated client's 32-bit int would overflow
        return schema | self.target.range
