"""API for people management and bulk imports: the same services as the pages
(identities.people, imports.services), the same audit records, the same checks."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from identities import people
from identities.models import FaceImage, Identity, clean_new_name
from imports import services as imports
from imports.models import BulkImport, ImportFile

from .exceptions import Conflict, InvalidUpload, QueueUnavailable
from .permissions import IsEditor
from .serializers import BY_HELP, MAX_ROW_ID, ErrorSerializer, IdentitySerializer

ERROR = OpenApiResponse(ErrorSerializer)


class RowIdField(serializers.IntegerField):
    def __init__(self, **kwargs):
        super().__init__(min_value=1, max_value=MAX_ROW_ID, **kwargs)


class PhotoIdsField(serializers.ListField):
    child = RowIdField()

    def __init__(self, **kwargs):
        super().__init__(allow_empty=False, **kwargs)


class MergeRequestSerializer(serializers.Serializer):
    into = RowIdField(help_text="The person who stays, with their name.")


class MergeResultSerializer(serializers.Serializer):
    identity = IdentitySerializer()
    moved = serializers.IntegerField()
    duplicates = serializers.IntegerField()


class SplitRequestSerializer(serializers.Serializer):
    images = PhotoIdsField(help_text="Ids of this person's photos that become the new person.")
    name = serializers.CharField(max_length=200)

    def validate_name(self, value):
        return clean_new_name(value)


class MoveRequestSerializer(serializers.Serializer):
    images = PhotoIdsField(help_text="Ids of this person's photos to move.")
    to = RowIdField(help_text="The person who gets them.")


class MoveResultSerializer(serializers.Serializer):
    moved = serializers.IntegerField()
    duplicates_removed = serializers.IntegerField(
        help_text="Photos the other person already had: removed instead of stored twice."
    )


def photos_of(identity, ids):
    found = list(FaceImage.objects.filter(identity=identity, pk__in=ids))
    if len(found) != len(set(ids)):
        raise serializers.ValidationError({"images": ["Every photo must be this person's."]})
    return found


class IdentityMerge(APIView):
    """Merge this person into another (editor): every photo moves, a photo both have is kept
    once, this person is deleted and models trained on either are marked stale."""

    permission_classes = [IsEditor]

    @extend_schema(request=MergeRequestSerializer, responses={200: MergeResultSerializer})
    def post(self, request, pk):
        absorbed = get_object_or_404(Identity, pk=pk)
        form = MergeRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        kept = get_object_or_404(Identity, pk=form.validated_data["into"])
        if kept.pk == absorbed.pk:
            raise serializers.ValidationError({"into": ["Choose another person."]})
        plan = people.merge_identities(kept, absorbed, request.user)
        identity = IdentitySerializer(kept, context={"request": request}).data
        return Response({"identity": identity, "moved": plan.moving, "duplicates": plan.duplicates})


class IdentitySplit(APIView):
    """Make a new person out of some of this person's photos (editor)."""

    permission_classes = [IsEditor]

    @extend_schema(request=SplitRequestSerializer, responses={201: IdentitySerializer})
    def post(self, request, pk):
        identity = get_object_or_404(Identity, pk=pk)
        form = SplitRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        images = photos_of(identity, form.validated_data["images"])
        created = people.split_photos(identity, images, form.validated_data["name"], request.user)
        data = IdentitySerializer(created, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED)


class IdentityMove(APIView):
    """Give some of this person's photos to another person (editor)."""

    permission_classes = [IsEditor]

    @extend_schema(request=MoveRequestSerializer, responses={200: MoveResultSerializer})
    def post(self, request, pk):
        identity = get_object_or_404(Identity, pk=pk)
        form = MoveRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        target = get_object_or_404(Identity, pk=form.validated_data["to"])
        if target.pk == identity.pk:
            raise serializers.ValidationError({"to": ["Choose another person."]})
        images = photos_of(identity, form.validated_data["images"])
        plan = people.move_photos(identity, images, target, request.user)
        return Response({"moved": len(plan.moving), "duplicates_removed": len(plan.duplicates)})


# --- bulk imports -------------------------------------------------------------------------


class ImportFileSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportFile
        fields = ["path", "person", "state", "reason"]


class ImportPersonSerializer(serializers.Serializer):
    name = serializers.CharField()
    identity_id = serializers.IntegerField(allow_null=True, help_text="null: a new person.")
    photos = serializers.IntegerField()
    skipped = serializers.IntegerField()


class ImportProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    waiting = serializers.IntegerField()
    added = serializers.IntegerField()
    skipped = serializers.IntegerField()
    failed = serializers.IntegerField()
    percent = serializers.IntegerField()


class BulkImportSerializer(serializers.ModelSerializer):
    people = ImportPersonSerializer(many=True, read_only=True)
    progress = serializers.SerializerMethodField()
    problems = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text=BY_HELP
    )

    class Meta:
        model = BulkImport
        fields = [
            "id",
            "status",
            "source_name",
            "people",
            "progress",
            "problems",
            "error",
            "created_by",
            "created_at",
            "confirmed_at",
            "finished_at",
        ]

    @extend_schema_field(ImportProgressSerializer)
    def get_progress(self, bulk):
        return imports.progress(bulk)

    @extend_schema_field(ImportFileSerializer(many=True))
    def get_problems(self, bulk):
        """Files skipped or refused (the first 1,000), and photos added but not usable."""
        files = bulk.files.exclude(state=ImportFile.State.PENDING).exclude(
            state=ImportFile.State.ADDED, reason=""
        )
        return ImportFileSerializer(files[:1000], many=True).data


class ImportRequestSerializer(serializers.Serializer):
    archive = serializers.FileField(help_text="A zip laid out one folder per person.")


class ImportList(APIView):
    """Upload a zip of people's photos (editor): it is checked and previewed, not imported
    until confirmed. A hostile or damaged zip is refused whole (400) and nothing is kept."""

    permission_classes = [IsEditor]
    parser_classes = [MultiPartParser]

    @extend_schema(
        request=ImportRequestSerializer, responses={201: BulkImportSerializer, 400: ERROR}
    )
    def post(self, request):
        form = ImportRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            bulk = imports.prepare_zip(form.validated_data["archive"], request.user)
        except imports.ArchiveRefused as exc:
            raise InvalidUpload(str(exc), code="archive_refused") from None
        data = BulkImportSerializer(bulk).data
        return Response(data, status=status.HTTP_201_CREATED)


class ImportDetail(APIView):
    """An import: its preview, then its progress and per-file results (editor)."""

    permission_classes = [IsEditor]

    @extend_schema(responses={200: BulkImportSerializer, 404: ERROR})
    def get(self, request, pk):
        bulk = imports.stop_if_stale(get_object_or_404(BulkImport, pk=pk))
        return Response(BulkImportSerializer(bulk).data)


class ImportConfirm(APIView):
    """Start a previewed import, or resume a stopped one, in the background (editor)."""

    permission_classes = [IsEditor]

    @extend_schema(request=None, responses={202: BulkImportSerializer, 409: ERROR, 503: ERROR})
    def post(self, request, pk):
        bulk = get_object_or_404(BulkImport, pk=pk)
        try:
            started = imports.confirm_import(bulk, request.user)
        except imports.QueueUnavailable as exc:
            raise QueueUnavailable(str(exc)) from None
        if not started:
            raise Conflict(f"Import #{bulk.pk} has already started.", code="already_started")
        bulk.refresh_from_db()
        return Response(BulkImportSerializer(bulk).data, status=status.HTTP_202_ACCEPTED)
