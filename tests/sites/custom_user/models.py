"""A custom user model unlike ``auth.User``: the address lives in
``contact_email`` and people log in with a ``handle``."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models


class MemberManager(BaseUserManager["Member"]):
    def create_user(
        self, handle: str, contact_email: str = "", password: str | None = None, **extra: Any
    ) -> Member:
        member = self.model(
            handle=handle, contact_email=self.normalize_email(contact_email), **extra
        )
        member.set_password(password)
        member.save(using=self._db)
        return member

    def create_superuser(
        self, handle: str, contact_email: str = "", password: str | None = None, **extra: Any
    ) -> Member:
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(handle, contact_email, password, **extra)


class Member(AbstractBaseUser, PermissionsMixin):
    handle = models.CharField(max_length=40, unique=True)
    contact_email = models.EmailField(blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)

    USERNAME_FIELD = "handle"
    EMAIL_FIELD = "contact_email"

    objects = MemberManager()

    def __str__(self) -> str:
        return self.handle
