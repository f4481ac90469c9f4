from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("staff/", admin.site.urls),
    path("account/lost-link/", include("betatel_reset.urls")),
]
