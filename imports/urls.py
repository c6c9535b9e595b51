from django.urls import path

from . import views

app_name = "imports"

urlpatterns = [
    path("", views.new_import, name="new"),
    path("<int:pk>/", views.import_detail, name="detail"),
    path("<int:pk>/confirm/", views.import_confirm, name="confirm"),
    path("<int:pk>/names/", views.import_rename, name="rename"),
    path("<int:pk>/discard/", views.import_discard, name="discard"),
    path("<int:pk>/status/", views.import_status, name="status"),
]
