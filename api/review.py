"""The API of reviewing identified faces: the queue, and one decision per face.

Decisions go through identities.review.review_face, like the Review page's buttons.
"""

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from identities.models import Identity, PredictionFace
from identities.review import (
    DECISIONS,
    NAME,
    AlreadyReviewed,
    ReviewError,
    review_face,
    review_faces,
)
from identities.review_forms import check_one_name

from .exceptions import Conflict
from .permissions import IsEditor
from .serializers import BY_HELP, CandidateSerializer, ErrorSerializer

ERROR = OpenApiResponse(ErrorSerializer)


class PredictionFaceSerializer(serializers.ModelSerializer):
    box = serializers.ListField(child=serializers.IntegerField())
    candidates = CandidateSerializer(many=True)
    identity_name = serializers.CharField(
        source="identity.name", default=None, allow_null=True, help_text="null: unknown."
    )
    reviewed_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text=BY_HELP
    )
    training_images = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = PredictionFace
        fields = [
            "id",
            "prediction",
            "index",
            "box",
            "identity",
            "identity_name",
            "confidence",
            "score",
            "candidates",
            "review",
            "reviewed_identity",
            "reviewed_by",
            "reviewed_at",
            "training_images",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "identity": {"help_text": "Who the model named; null for an unknown face."},
            "training_images": {"help_text": "The photo the face became, once named."},
        }


class ReviewRequestSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(
        choices=DECISIONS,
        help_text="confirm: the model named the right person; name: it is identity_id (or "
        "a new person called new_identity_name); reject: not anyone we know.",
    )
    identity_id = serializers.PrimaryKeyRelatedField(
        queryset=Identity.objects.all(), required=False, allow_null=True, source="identity"
    )
    new_identity_name = serializers.CharField(
        required=False, allow_blank=True, max_length=200, source="new_name"
    )

    def validate(self, data):
        if data["decision"] == NAME:
            try:
                check_one_name(data)
            except DjangoValidationError as exc:
                raise serializers.ValidationError(" ".join(exc.messages)) from None
        return data


class BulkReviewRequestSerializer(ReviewRequestSerializer):
    faces = serializers.PrimaryKeyRelatedField(
        queryset=PredictionFace.objects.select_related("prediction", "identity"),
        many=True,
        allow_empty=False,
        help_text="Ids of the faces (PredictionFace id, as in the review queue) to answer.",
    )


class BulkReviewResponseSerializer(serializers.Serializer):
    identity = serializers.IntegerField(allow_null=True, help_text="The person named, if any.")
    answered = serializers.ListField(child=serializers.IntegerField())
    skipped = serializers.IntegerField(
        help_text="Faces already reviewed, or that the model named nobody (for confirm)."
    )


class ReviewQueue(generics.ListAPIView):
    """Faces waiting for review, oldest first (editor): unknown, or named with a confidence
    under the FACEWEB_REVIEW_BELOW_CONFIDENCE setting."""

    permission_classes = [IsEditor]
    serializer_class = PredictionFaceSerializer

    def get_queryset(self):
        below = settings.FACEWEB_REVIEW_BELOW_CONFIDENCE
        return PredictionFace.objects.to_review(below).prefetch_related("training_images")


class BulkReview(APIView):
    """One answer for many faces (editor), as the Review pages' selection gives it."""

    permission_classes = [IsEditor]

    @extend_schema(
        request=BulkReviewRequestSerializer,
        responses={200: BulkReviewResponseSerializer, 400: ERROR},
        description="400 for an unknown decision or face, a missing name, or a person picked "
        "together with a different new name (nothing changes). Faces already reviewed are "
        "skipped, not errors.",
    )
    def post(self, request):
        form = BulkReviewRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            target, answered, skipped = review_faces(
                data["faces"],
                data["decision"],
                request.user,
                data.get("identity"),
                data.get("new_name", ""),
            )
        except ReviewError as exc:
            raise serializers.ValidationError(str(exc)) from None
        body = {"identity": target.pk if target else None, "skipped": skipped}
        return Response(body | {"answered": [face.pk for face in answered]})


class FaceReview(APIView):
    """Say who a face of an identification is (editor); a named face becomes a training
    photo of that person, a rejected one is never offered again and the next model refuses
    faces like it. Audited."""

    permission_classes = [IsEditor]

    @extend_schema(
        request=ReviewRequestSerializer,
        responses={200: PredictionFaceSerializer, 400: ERROR, 404: ERROR, 409: ERROR},
        description="index counts from 0, largest face first, as in the prediction's faces. "
        "400 for an unknown decision, a person that does not exist, or a name that is "
        "missing; 409 when the face was already reviewed (nothing changes).",
    )
    def post(self, request, pk, index):
        face = get_object_or_404(
            PredictionFace.objects.select_related("prediction", "identity"),
            prediction_id=pk,
            index=index,
        )
        form = ReviewRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            face, _ = review_face(
                face, data["decision"], request.user, data.get("identity"), data.get("new_name")
            )
        except AlreadyReviewed as exc:
            raise Conflict(str(exc), code="already_reviewed") from None
        except ReviewError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return Response(PredictionFaceSerializer(face, context={"request": request}).data)
