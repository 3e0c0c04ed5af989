"""Content URLs."""
from django.urls import path

from .views import serve

urlpatterns = [path("<str:remote_name>/<path:relative_path>", serve, name="content")]
