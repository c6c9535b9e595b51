from django.urls import path

from . import views

app_name = "training"

urlpatterns = [
    path("", views.training_home, name="home"),
    path("jobs/<int:pk>/", views.job_detail, name="job"),
    path("jobs/<int:pk>/status/", views.job_status, name="job_status"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("versions/<int:pk>/activate/", views.version_activate, name="version_activate"),
    path("versions/<int:pk>/delete/", views.version_delete, name="version_delete"),
]
