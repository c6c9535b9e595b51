"""Identifying several photos at once through the API (identities.batches does the work)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from identities import batches
from identities.models import BatchPhoto, IdentifyBatch
from training.services import STRICTNESS_CHOICES

from .exceptions import InvalidUpload
from .permissions import IsViewer
from .serializers import ErrorSerializer

ERROR = OpenApiResponse(ErrorSerializer)


class IdentifyBatchRequestSerializer(serializers.Serializer):
    images = serializers.ListField(
        child=serializers.FileField(),
        min_length=1,
        help_text="Photos, repeated; a zip of photos is opened and each photo in it counted.",
    )
    strictness = serializers.ChoiceField(choices=STRICTNESS_CHOICES, default="normal")


class BatchPhotoSerializer(serializers.ModelSerializer):
    prediction = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True, help_text="The identification, once done."
    )

    class Meta:
        model = BatchPhoto
        fields = ["position", "name", "state", "reason", "prediction"]
        read_only_fields = fields


class IdentifyBatchSerializer(serializers.ModelSerializer):
    photos = BatchPhotoSerializer(many=True, read_only=True)
    progress = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = IdentifyBatch
        fields = ["id", "status", "strictness", "error", "progress", "photos", "url"]
        fields += ["created_at", "finished_at"]
        read_only_fields = fields

    def get_progress(self, batch) -> dict[str, int]:
        """{total, done, waiting, identified, refused, percent}."""
        return batches.progress(batch)

    def get_url(self, batch) -> str:
        """Where to poll it."""
        request = self.context["request"]
        return reverse("api:identify-batch", kwargs={"pk": batch.pk}, request=request)


class IdentifyBatchCreate(APIView):
    """Identify several photos (viewer). A few are identified at once (201, finished); more
    go to a worker (202): poll the batch's url until its status is succeeded or failed."""

    permission_classes = [IsViewer]
    parser_classes = [MultiPartParser]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "identify"

    @extend_schema(
        request=IdentifyBatchRequestSerializer,
        responses={
            201: IdentifyBatchSerializer,
            202: IdentifyBatchSerializer,
            400: ERROR,
            409: ERROR,
            429: ERROR,
        },
        description="Refused files are listed in photos with state refused and the reason; "
        "400 when none can be used (details.refused) or a zip is refused whole.",
    )
    def post(self, request):
        form = IdentifyBatchRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            batch, refused = batches.create_batch(data["images"], request.user, data["strictness"])
        except batches.BatchRefused as exc:
            raise InvalidUpload(str(exc)) from None
        if batch is None:
            refused = [{"name": name, "reason": reason} for name, reason in refused]
            raise InvalidUpload("No photo could be used.", details={"refused": refused})
        batches.start_batch(batch)
        body = IdentifyBatchSerializer(batch, context={"request": request}).data
        done = status.HTTP_201_CREATED if batch.is_finished else status.HTTP_202_ACCEPTED
        return Response(body, status=done)


class IdentifyBatchDetail(generics.RetrieveAPIView):
    """A batch of photos and how far it is (viewer: their own; admin: any)."""

    permission_classes = [IsViewer]
    serializer_class = IdentifyBatchSerializer

    def get_queryset(self):
        return IdentifyBatch.objects.visible_to(self.request.user).prefetch_related("photos")

    def get_object(self):
        return batches.stop_if_stale(super().get_object())
