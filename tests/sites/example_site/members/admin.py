from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import Member


@admin.register(Member)
class MemberAdmin(UserAdmin):
    ordering = ["handle"]
    list_display = ["handle", "contact_email", "is_staff"]
    search_fields = ["handle", "contact_email"]
    fieldsets = [
        (None, {"fields": ["handle", "contact_email", "password", "is_active", "is_staff"]})
    ]
    add_fieldsets = [(None, {"fields": ["handle", "contact_email", "password1", "password2"]})]
