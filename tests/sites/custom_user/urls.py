from django.contrib import admin
from django.urls import path

from .admin import explicit_site

urlpatterns = [
    path("admin/", admin.site.urls),
    path("explicit-admin/", explicit_site.urls),
]
