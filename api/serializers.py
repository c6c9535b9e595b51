from django.db import IntegrityError, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from identities.models import FaceImage, Identity, Prediction, clean_new_name
from training.models import ModelVersion, TrainingJob
from training.parameters import training_parameters
from training.services import STRICTNESS_CHOICES

# identify_upload stores the five best candidates per face; a request may ask for fewer.
MAX_TOP_K = 5
# The largest id a row can have (BigAutoField): a larger one in a query is refused by the
# database, failing the whole request.
MAX_ROW_ID = 2**63 - 1
BY_HELP = "A username; null for what the schedule or a command did, or once the user is gone."


class IdentitySerializer(serializers.ModelSerializer):
    photo_count = serializers.SerializerMethodField()
    usable_photo_count = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text=BY_HELP
    )

    class Meta:
        model = Identity
        fields = [
            "id",
            "name",
            "slug",
            "notes",
            "is_active",
            "photo_count",
            "usable_photo_count",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["slug"]
        # validate_name checks uniqueness without regard to case, like the web form.
        extra_kwargs = {"name": {"validators": []}}

    def validate_name(self, value):
        return clean_new_name(value, exclude_pk=getattr(self.instance, "pk", None))

    def save(self, **kwargs):
        # Two requests creating the same person at the same moment both pass validate_name;
        # the database refuses the second, which then gets the same answer as if it had
        # come a moment later. A clash of slugs alone (different names) is tried again.
        for attempt in range(3):
            try:
                with transaction.atomic():
                    return super().save(**kwargs)
            except IntegrityError:
                name = self.validated_data.get("name", "")
                taken = Identity.objects.filter(name__iexact=name)
                if self.instance is not None:
                    taken = taken.exclude(pk=self.instance.pk)
                if taken.exists() or attempt == 2:
                    raise serializers.ValidationError(
                        {"name": [f"There is already a person called {name}."]}
                    ) from None

    def get_photo_count(self, identity) -> int:
        # Annotated on lists; counted for a single identity just created or changed.
        count = getattr(identity, "photo_count", None)
        return identity.images.count() if count is None else count

    def get_usable_photo_count(self, identity) -> int:
        count = getattr(identity, "usable_count", None)
        if count is None:
            count = identity.images.filter(status=FaceImage.Status.OK).count()
        return count


class FaceImageSerializer(serializers.ModelSerializer):
    status_display = serializers.CharField(source="get_status_display", read_only=True)
    problem = serializers.CharField(read_only=True, help_text="Why training leaves it out.")
    box = serializers.ListField(child=serializers.IntegerField(), allow_null=True, read_only=True)
    urls = serializers.SerializerMethodField()

    class Meta:
        model = FaceImage
        fields = [
            "id",
            "identity",
            "status",
            "status_display",
            "problem",
            "box",
            "detector_score",
            "width",
            "height",
            "original_name",
            "uploaded_at",
            "urls",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {
            "type": "object",
            "properties": {
                kind: {"type": "string", "format": "uri", "nullable": True}
                for kind in ("image", "thumbnail", "face_crop")
            },
        }
    )
    def get_urls(self, image):
        """Where the API serves the photo, its thumbnail and its face crop."""
        request = self.context.get("request")
        return {
            kind: reverse(
                "api:image-file",
                kwargs={"identity_id": image.identity_id, "pk": image.pk, "kind": kind},
                request=request,
            )
            if getattr(image, kind)
            else None
            for kind in ("image", "thumbnail", "face_crop")
        }


class ImageUploadSerializer(serializers.Serializer):
    """The multipart request: one or more files in the field `images`."""

    images = serializers.ListField(child=serializers.FileField(), min_length=1)


class RefusedFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    reason = serializers.CharField()


class ImageUploadResultSerializer(serializers.Serializer):
    created = FaceImageSerializer(many=True)
    refused = RefusedFileSerializer(many=True)


class InRange:
    """A training parameter whose range the schema states (api.schema) and that refuses a
    value outside it with the words the Training page and `manage.py train` use."""

    def __init__(self, parameter, **kwargs):
        self.range = {"minimum": parameter.lowest, "maximum": parameter.maximum}
        if parameter.exclusive_minimum:
            self.range["exclusiveMinimum"] = True
        if parameter.exclusive_maximum:
            self.range["exclusiveMaximum"] = True
        super().__init__(validators=[in_range(parameter)], **kwargs)


class IntegerInRange(InRange, serializers.IntegerField):
    pass


class NumberInRange(InRange, serializers.FloatField):
    pass


def in_range(parameter):
    def check(value):
        error = parameter.range_error(value)
        if error:
            raise serializers.ValidationError(error)

    return check


def parameter_field(parameter):
    """The serializer field of a training parameter (training.parameters)."""
    common = {"required": False, "help_text": parameter.help}
    if parameter.choices:
        return serializers.ChoiceField(choices=list(parameter.choices), **common)
    if parameter.kind is str:
        return serializers.CharField(max_length=parameter.max_length, **common)
    field_class = IntegerInRange if parameter.kind is int else NumberInRange
    return field_class(parameter, **common)


class TrainingParamsSerializer(serializers.Serializer):
    """The parameters a job may be started with; the rest take their defaults.

    Its fields are built from training.parameters, as the Training page's form and
    `manage.py train` are, so all three take the same parameters with the same limits;
    training.services.default_params checks what depends on the network chosen.
    """

    def get_fields(self):
        return {parameter.name: parameter_field(parameter) for parameter in training_parameters()}

    def validate(self, attrs):
        # A misspelt parameter must not silently train with a default instead.
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                f"Unknown training parameter(s): {', '.join(unknown)}; "
                f"known: {', '.join(self.fields)}."
            )
        return attrs


class TrainingJobSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text=BY_HELP
    )
    model_version = serializers.SerializerMethodField()
    worker_silent_minutes = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="Minutes since the worker running this job last reported, once it has "
        "been silent for a while (a killed worker); null otherwise.",
    )
    warning = serializers.CharField(
        read_only=True, help_text="Why a running job may be stuck; empty when all is well."
    )

    class Meta:
        model = TrainingJob
        fields = [
            "id",
            "status",
            "trigger",
            "params",
            "progress",
            "history",
            "error",
            "cancel_requested",
            "device",
            "model_version",
            "worker_silent_minutes",
            "warning",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_model_version(self, job) -> int | None:
        """The id of the model version this job made, once it has made one."""
        version = getattr(job, "model_version", None)
        return version.pk if version else None


class ModelVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "architecture",
            "classes",
            "metrics",
            "calibration",
            "params",
            "dataset_hash",
            "sha256",
            "size_bytes",
            "is_active",
            "is_stale",
            "job",
            "created_at",
            "activated_at",
        ]
        read_only_fields = fields


class CandidateSerializer(serializers.Serializer):
    identity = serializers.CharField()
    identity_id = serializers.IntegerField()
    probability = serializers.FloatField()


class FaceResultSerializer(serializers.Serializer):
    box = serializers.ListField(
        child=serializers.IntegerField(), help_text="[x, y, width, height] in the photo's pixels."
    )
    identity = serializers.CharField(allow_null=True, help_text="null: an unknown face.")
    identity_id = serializers.IntegerField(allow_null=True)
    confidence = serializers.FloatField()
    score = serializers.FloatField(required=False)
    top_k = CandidateSerializer(many=True)


class IdentifyRequestSerializer(serializers.Serializer):
    image = serializers.FileField()
    strictness = serializers.ChoiceField(choices=STRICTNESS_CHOICES, default="normal")
    top_k = serializers.IntegerField(min_value=1, max_value=MAX_TOP_K, default=MAX_TOP_K)


TOO_SMALL_HELP = "[x, y, width, height] of each face found but too small to identify."
STRICTNESS_HELP = "The naming level used; empty for identifications from before it was kept."


class IdentifyResultSerializer(serializers.Serializer):
    prediction_id = serializers.IntegerField()
    model_version = serializers.IntegerField()
    latency_ms = serializers.FloatField()
    strictness = serializers.CharField(help_text=STRICTNESS_HELP)
    faces = FaceResultSerializer(many=True)
    too_small = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()), help_text=TOO_SMALL_HELP
    )


class PredictionSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text=BY_HELP
    )
    faces = FaceResultSerializer(many=True, read_only=True)
    too_small = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        read_only=True,
        help_text=TOO_SMALL_HELP,
    )
    photo_url = serializers.SerializerMethodField()

    class Meta:
        model = Prediction
        fields = [
            "id",
            "model_version",
            "strictness",
            "faces",
            "too_small",
            "width",
            "height",
            "latency_ms",
            "photo_url",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_photo_url(self, prediction):
        if not prediction.photo:
            return None
        return reverse(
            "api:prediction-photo", kwargs={"pk": prediction.pk}, request=self.context["request"]
        )


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, for programs: invalid, no_active_model, ...")
    message = serializers.CharField(help_text="For people.")
    details = serializers.DictField(help_text="Field errors, refused files, seconds to wait...")


class ErrorSerializer(serializers.Serializer):
    """The body of every error response."""

    error = ErrorDetailSerializer()
