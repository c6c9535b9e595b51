"""The API's URLs, included at api/v1/ by faceweb/urls.py."""

from django.urls import path, re_path, register_converter
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import IsAuthenticated

from . import batches, people, review, views
from .serializers import MAX_ROW_ID


class Int64Converter:
    """A number in a path, at most what a BIGINT column holds: a longer one names no row
    (a JSON 404) instead of reaching the database, which refuses the whole query."""

    regex = "[0-9]{1,19}"

    def to_python(self, value):
        if int(value) > MAX_ROW_ID:
            raise ValueError(value)
        return int(value)

    def to_url(self, value):
        return str(value)


register_converter(Int64Converter, "int64")
app_name = "api"

urlpatterns = [
    path("identities/", views.IdentityList.as_view(), name="identity-list"),
    path("identities/<int64:pk>/", views.IdentityDetail.as_view(), name="identity-detail"),
    path(
        "identities/<int64:identity_id>/images/",
        views.IdentityImages.as_view(),
        name="identity-images",
    ),
    path(
        "identities/<int64:identity_id>/images/<int64:pk>/",
        views.ImageDetail.as_view(),
        name="image-detail",
    ),
    path(
        "identities/<int64:identity_id>/images/<int64:pk>/<str:kind>/",
        views.ImageFile.as_view(),
        name="image-file",
    ),
    path("identities/<int64:pk>/merge/", people.IdentityMerge.as_view(), name="identity-merge"),
    path("identities/<int64:pk>/split/", people.IdentitySplit.as_view(), name="identity-split"),
    path("identities/<int64:pk>/move/", people.IdentityMove.as_view(), name="identity-move"),
    path("imports/", people.ImportList.as_view(), name="import-list"),
    path("imports/<int64:pk>/", people.ImportDetail.as_view(), name="import-detail"),
    path("imports/<int64:pk>/confirm/", people.ImportConfirm.as_view(), name="import-confirm"),
    path("training-jobs/", views.TrainingJobList.as_view(), name="job-list"),
    path("training-jobs/<int64:pk>/", views.TrainingJobDetail.as_view(), name="job-detail"),
    path("training-jobs/<int64:pk>/cancel/", views.TrainingJobCancel.as_view(), name="job-cancel"),
    path("model-versions/", views.ModelVersionList.as_view(), name="version-list"),
    path("model-versions/<int64:pk>/", views.ModelVersionDetail.as_view(), name="version-detail"),
    path(
        "model-versions/<int64:pk>/activate/",
        views.ModelVersionActivate.as_view(),
        name="version-activate",
    ),
    path("identify/", views.Identify.as_view(), name="identify"),
    path("identify/batches/", batches.IdentifyBatchCreate.as_view(), name="identify-batches"),
    path(
        "identify/batches/<int64:pk>/",
        batches.IdentifyBatchDetail.as_view(),
        name="identify-batch",
    ),
    path("predictions/", views.PredictionList.as_view(), name="prediction-list"),
    path("predictions/<int64:pk>/", views.PredictionDetail.as_view(), name="prediction-detail"),
    path("predictions/<int64:pk>/photo/", views.PredictionPhoto.as_view(), name="prediction-photo"),
    path(
        "predictions/<int64:pk>/faces/<int64:index>/review/",
        review.FaceReview.as_view(),
        name="face-review",
    ),
    path("review/", review.ReviewQueue.as_view(), name="review-queue"),
    path("review/answers/", review.BulkReview.as_view(), name="review-bulk"),
    # The schema names no person, but the API is for the team: any logged-in user or token.
    path(
        "schema/",
        SpectacularAPIView.as_view(permission_classes=[IsAuthenticated]),
        name="schema",
    ),
    path("docs/", views.docs, name="docs"),
    re_path(r"^.*/$", views.NotFound.as_view()),
]
