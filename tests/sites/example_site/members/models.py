from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models


class MemberManager(BaseUserManager):
    def create_user(self, handle, contact_email="", password=None, **extra):
        member = self.model(
            handle=handle, contact_email=self.normalize_email(contact_email), **extra
        )
        member.set_password(password)
        member.save(using=self._db)
        return member

    def create_superuser(self, handle, contact_email="", password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(handle, contact_email, password, **extra)


class Member(AbstractBaseUser, PermissionsMixin):
    handle = models.CharField(max_length=40, unique=True)
    contact_email = models.EmailField(blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)

    USERNAME_FIELD = "handle"
    EMAIL_FIELD = "contact_email"
    REQUIRED_FIELDS = ["contact_email"]

    objects = MemberManager()
