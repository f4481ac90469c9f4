"""Two admins for ``Member``: the site's own on the default site (the resend
actions attach to it automatically), and one on a separate site that adds them
explicitly with the mixin."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from betatel_reset.admin import ResendAttemptAdmin, ResendResetEmailMixin
from betatel_reset.models import ResendAttempt

from .models import Member


@admin.action(description="Make staff")
def make_staff(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Member]) -> None:
    queryset.update(is_staff=True)


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["handle", "contact_email", "is_active"]
    search_fields = ["handle", "contact_email"]
    actions = [make_staff]


explicit_site = admin.AdminSite(name="explicit")


class ExplicitMemberAdmin(ResendResetEmailMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["handle", "contact_email"]


explicit_site.register(Member, ExplicitMemberAdmin)
explicit_site.register(ResendAttempt, ResendAttemptAdmin)
