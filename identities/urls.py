from django.urls import path

from . import batch_views, people_views, review_views, views

app_name = "identities"

urlpatterns = [
    path("", views.home, name="home"),
    path("people/", views.identity_list, name="list"),
    path("people/<slug:slug>/", views.identity_detail, name="detail"),
    path("people/<slug:slug>/edit/", views.identity_edit, name="edit"),
    path("people/<slug:slug>/delete/", views.identity_delete, name="delete"),
    path("people/<slug:slug>/split/", people_views.split, name="split"),
    path("people/<slug:slug>/move/", people_views.move, name="move"),
    # Outside people/<slug>/ so that no person's name can shadow them.
    path("manage/merge/", people_views.merge, name="merge"),
    path("manage/delete/", people_views.delete_people, name="delete_people"),
    path("quality/", people_views.data_quality, name="quality"),
    path("photos/<int:pk>/delete/", views.image_delete, name="image_delete"),
    path("photos/<int:pk>/faces/", views.choose_face_view, name="choose_face"),
    path("identify/", views.identify, name="identify"),
    path("identify/<int:pk>/", views.prediction_detail, name="prediction"),
    path("identify/batches/<int:pk>/", batch_views.batch_detail, name="batch"),
    path("identify/batches/<int:pk>/status/", batch_views.batch_status, name="batch_status"),
    path("identify/batches/<int:pk>/resume/", batch_views.batch_resume, name="batch_resume"),
    path("people/<slug:slug>/export/", review_views.identity_export, name="export"),
    path("history/", review_views.history, name="history"),
    path("review/", review_views.review_inbox, name="review"),
    path("review/faces/<int:pk>/", review_views.review_face_view, name="review_face"),
    path("review/faces/", review_views.review_bulk, name="review_bulk"),
    path("review/undo/", review_views.review_undo, name="review_undo"),
    path("review/recent/", review_views.recent_names, name="recent_names"),
    path("review/unknown/", review_views.unknown_faces, name="unknown_faces"),
    path("media/<path:path>", views.media, name="media"),
]
