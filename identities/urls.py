from django.urls import path

from . import views

app_name = "identities"

urlpatterns = [
    path("", views.home, name="home"),
    path("people/", views.identity_list, name="list"),
    path("people/<slug:slug>/", views.identity_detail, name="detail"),
    path("people/<slug:slug>/edit/", views.identity_edit, name="edit"),
    path("people/<slug:slug>/delete/", views.identity_delete, name="delete"),
    path("photos/<int:pk>/delete/", views.image_delete, name="image_delete"),
    path("photos/<int:pk>/faces/", views.choose_face_view, name="choose_face"),
    path("identify/", views.identify, name="identify"),
    path("identify/<int:pk>/", views.prediction_detail, name="prediction"),
    path("media/<path:path>", views.media, name="media"),
]
