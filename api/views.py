"""The REST API. Each view states the role it needs; errors are shaped by api.exceptions.

Every write goes through the same code as the pages (identities.uploads, identify_upload,
training.services) and leaves the same audit record.
"""

from django.conf import settings
from django.core.files.storage import default_storage
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework import exceptions, generics, status
from rest_framework.filters import SearchFilter
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts import audit
from identities.models import FaceImage, Identity, Prediction
from identities.privacy import forget_identity
from identities.uploads import add_uploaded_files
from identities.views import identify_upload, stored_file_response
from training import services
from training.models import ModelVersion, TrainingJob

from .exceptions import Conflict, InvalidUpload
from .permissions import IsEditor, IsTrainer, IsViewer
from .serializers import (
    ErrorSerializer,
    FaceImageSerializer,
    IdentifyRequestSerializer,
    IdentifyResultSerializer,
    IdentitySerializer,
    ImageUploadResultSerializer,
    ImageUploadSerializer,
    ModelVersionSerializer,
    PredictionSerializer,
    TrainingJobSerializer,
    TrainingParamsSerializer,
)

IMAGE_KINDS = ("image", "thumbnail", "face_crop")
ERROR = OpenApiResponse(ErrorSerializer)


# --- identities and their photos ----------------------------------------------------------


class IdentityList(generics.ListCreateAPIView):
    """People the model can learn (editor). Search by name with ?search=."""

    permission_classes = [IsEditor]
    serializer_class = IdentitySerializer
    filter_backends = [SearchFilter]
    search_fields = ["name"]

    def get_queryset(self):
        return (
            Identity.objects.select_related("created_by").with_photo_counts().order_by("name")
        )  # Meta.ordering is dropped from GROUP BY queries

    def perform_create(self, serializer):
        identity = serializer.save(created_by=self.request.user)
        audit.record(self.request.user, "identity.create", identity)


class IdentityDetail(generics.RetrieveUpdateDestroyAPIView):
    """One person (editor). PATCH renames or changes notes and the active flag; DELETE
    removes the person with every photo and every identification that names them, and
    notes on the models trained on them that their face is still in those weights."""

    permission_classes = [IsEditor]
    serializer_class = IdentitySerializer
    queryset = Identity.objects.select_related("created_by")
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def perform_update(self, serializer):
        identity = serializer.instance
        changed = [k for k, v in serializer.validated_data.items() if getattr(identity, k) != v]
        serializer.save()
        audit.record(self.request.user, "identity.change", identity, fields=changed)

    def perform_destroy(self, identity):
        forget_identity(identity, self.request.user)


class IdentityImages(generics.ListAPIView):
    """A person's photos (editor). POST uploads one or many, as repeated `images` fields."""

    permission_classes = [IsEditor]
    serializer_class = FaceImageSerializer
    parser_classes = [MultiPartParser]

    def get_identity(self):
        return get_object_or_404(Identity, pk=self.kwargs["identity_id"])

    def get_queryset(self):
        return self.get_identity().images.all()

    @extend_schema(
        request=ImageUploadSerializer,
        responses={201: ImageUploadResultSerializer, 400: ERROR},
        description="Each file is checked from its bytes, like uploads on the person's page. "
        "Files that pass are stored (with a status saying whether training can use them); "
        "the others are listed with the reason. When every file is refused the answer is "
        "400 and nothing is stored.",
    )
    def post(self, request, identity_id):
        identity = self.get_identity()
        files = request.FILES.getlist("images")
        check_file_count(files)
        added, refused = add_uploaded_files(identity, files, request.user)
        refused = [{"name": name, "reason": reason} for name, reason in refused]
        if not added:
            message = refused[0]["reason"] if len(refused) == 1 else "No file could be used."
            raise InvalidUpload(message, details={"refused": refused})
        audit.record(request.user, "photo.add", identity, count=len(added))
        created = FaceImageSerializer(added, many=True, context={"request": request}).data
        return Response({"created": created, "refused": refused}, status=status.HTTP_201_CREATED)


def check_file_count(files):
    limit = settings.FACEWEB_MAX_FILES_PER_UPLOAD
    if not files:
        raise exceptions.ValidationError({"images": ["Send one or more files as `images`."]})
    if len(files) > limit:
        raise exceptions.ValidationError({"images": [f"At most {limit} photos at a time."]})


class ImageDetail(generics.RetrieveDestroyAPIView):
    """One photo of a person (editor); DELETE removes it and its files."""

    permission_classes = [IsEditor]
    serializer_class = FaceImageSerializer

    def get_queryset(self):
        return FaceImage.objects.filter(identity_id=self.kwargs["identity_id"])

    def perform_destroy(self, image):
        audit.record(self.request.user, "photo.delete", image)
        image.delete()


class AnyAccept(BaseContentNegotiation):
    """File views answer with the file whatever the client accepts, errors in JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class FileView(APIView):
    renderer_classes = [JSONRenderer]
    content_negotiation_class = AnyAccept

    def file_response(self, name):
        if not name or not default_storage.exists(name):
            raise exceptions.NotFound("The file is gone.")
        return stored_file_response(name)


class ImageFile(FileView):
    """The stored JPEG of a photo: kind is image, thumbnail or face_crop (editor)."""

    permission_classes = [IsEditor]

    @extend_schema(
        operation_id="identities_images_file",
        parameters=[OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=IMAGE_KINDS)],
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY, 404: ERROR},
    )
    def get(self, request, identity_id, pk, kind):
        image = get_object_or_404(FaceImage, identity_id=identity_id, pk=pk)
        if kind not in IMAGE_KINDS:
            raise exceptions.NotFound(f"kind must be one of {', '.join(IMAGE_KINDS)}.")
        return self.file_response(getattr(image, kind).name)


# --- training -----------------------------------------------------------------------------


class TrainingJobList(generics.ListAPIView):
    """Training jobs, newest first (trainer). POST starts one."""

    permission_classes = [IsTrainer]
    serializer_class = TrainingJobSerializer
    queryset = TrainingJob.objects.select_related("created_by", "model_version")

    def list(self, request, *args, **kwargs):
        services.reap_stale_jobs()
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=TrainingParamsSerializer,
        responses={
            200: TrainingJobSerializer,
            201: TrainingJobSerializer,
            400: ERROR,
            409: ERROR,
            503: ERROR,
        },
        description="Queues a job with these parameters; the others take their defaults. "
        "Unknown parameters are refused (400). 409 when the photos cannot make a training "
        "set yet. When the same job on the same photos is already queued or running, the "
        "answer is 200 with that job, and nothing new is started. 503 when the task queue "
        "cannot be reached (the job is recorded as failed with that reason).",
    )
    def post(self, request):
        params = TrainingParamsSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            job = services.start_training(
                request.user, TrainingJob.Trigger.API, **params.validated_data
            )
        except ValueError as exc:
            raise exceptions.ValidationError(str(exc)) from None
        data = TrainingJobSerializer(job, context={"request": request}).data
        if job.already_started:  # the same job on the same photos: answer with that one
            return Response(data, status=status.HTTP_200_OK)
        audit.record(request.user, "training.start", job)
        return Response(data, status=status.HTTP_201_CREATED)


class TrainingJobDetail(generics.RetrieveAPIView):
    """One job: status, parameters, per-epoch history, progress, error (trainer)."""

    permission_classes = [IsTrainer]
    serializer_class = TrainingJobSerializer
    queryset = TrainingJob.objects.select_related("created_by", "model_version")

    def retrieve(self, request, *args, **kwargs):
        services.reap_stale_jobs()
        return super().retrieve(request, *args, **kwargs)


class TrainingJobCancel(APIView):
    """Ask a job to stop (trainer): a queued one stops at once, a running one within a batch."""

    permission_classes = [IsTrainer]

    @extend_schema(request=None, responses={200: TrainingJobSerializer, 409: ERROR})
    def post(self, request, pk):
        job = get_object_or_404(TrainingJob, pk=pk)
        if job.is_finished:
            raise Conflict(f"Job #{job.pk} has already finished ({job.status}).", code="finished")
        services.cancel_job(job)
        audit.record(request.user, "training.cancel", job)
        job.refresh_from_db()
        return Response(TrainingJobSerializer(job, context={"request": request}).data)


class ModelVersionList(generics.ListAPIView):
    """Trained models, newest first, with metrics and classes (trainer: they name people)."""

    permission_classes = [IsTrainer]
    serializer_class = ModelVersionSerializer
    queryset = ModelVersion.objects.all()


class ModelVersionDetail(generics.RetrieveAPIView):
    permission_classes = [IsTrainer]
    serializer_class = ModelVersionSerializer
    queryset = ModelVersion.objects.all()


class ModelVersionActivate(APIView):
    """Make this version the one every identification uses (trainer)."""

    permission_classes = [IsTrainer]

    @extend_schema(request=None, responses={200: ModelVersionSerializer})
    def post(self, request, pk):
        version = get_object_or_404(ModelVersion, pk=pk)
        services.activate_version(version)
        audit.record(request.user, "version.activate", version)
        return Response(ModelVersionSerializer(version, context={"request": request}).data)


# --- identification -----------------------------------------------------------------------


class Identify(APIView):
    """Who is in this photo, face by face (viewer). The request is kept as a prediction."""

    permission_classes = [IsViewer]
    parser_classes = [MultiPartParser]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "identify"

    @extend_schema(
        request=IdentifyRequestSerializer,
        responses={200: IdentifyResultSerializer, 400: ERROR, 409: ERROR, 429: ERROR},
        description="Faces come in reading order (rows top to bottom, each left to right); "
        "identity is null for a face the model does not know. 409 when no model is active yet.",
    )
    def post(self, request):
        form = IdentifyRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        prediction = identify_upload(
            form.validated_data["image"], request.user, form.validated_data["strictness"]
        )
        top_k = form.validated_data["top_k"]
        faces = [face | {"top_k": face["top_k"][:top_k]} for face in prediction.faces]
        return Response(
            {
                "prediction_id": prediction.pk,
                "model_version": prediction.model_version_id,
                "latency_ms": prediction.latency_ms,
                "strictness": prediction.strictness,
                "faces": faces,
                "too_small": prediction.too_small,
            }
        )


class VisiblePredictions:
    """Viewers see their own identifications; admins see everyone's."""

    permission_classes = [IsViewer]
    serializer_class = PredictionSerializer

    def get_queryset(self):
        return Prediction.objects.visible_to(self.request.user).select_related("created_by")


class PredictionList(VisiblePredictions, generics.ListAPIView):
    """Past identifications, newest first (viewer: their own; admin: all)."""


class PredictionDetail(VisiblePredictions, generics.RetrieveAPIView):
    """One past identification (viewer: their own; admin: any)."""


class PredictionPhoto(VisiblePredictions, FileView):
    """The photo that was identified, when it is still kept."""

    @extend_schema(
        operation_id="predictions_photo",
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY, 404: ERROR},
    )
    def get(self, request, pk):
        prediction = get_object_or_404(self.get_queryset(), pk=pk)
        return self.file_response(prediction.photo.name)


# --- documentation ------------------------------------------------------------------------


class NotFound(APIView):
    """Unknown paths under the API answer in JSON like everything else."""

    permission_classes = []
    schema = None

    def get(self, request, *args, **kwargs):
        raise exceptions.NotFound("There is no such API endpoint.")

    post = put = patch = delete = get


def docs(request):
    """Interactive docs (Swagger UI served from this site, so it works offline)."""
    return SpectacularSwaggerView.as_view(url_name="api:schema")(request)
