from django.contrib import admin
from django.urls import include, path
from members.views import home

urlpatterns = [
    path("", home, name="home"),
    path("staff/", admin.site.urls),
    # From the README's "Add it to your site", step 3.
    path("reset-password/", include("betatel_reset.urls")),
]
