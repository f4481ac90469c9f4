"""An email-as-username user model, as project templates generate it: no
username field, the address is what people sign in with."""

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models


class MemberManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("The given email must be set")
        member = self.model(email=self.normalize_email(email), **extra)
        member.set_password(password)
        member.save(using=self._db)
        return member

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)


class Member(AbstractUser):
    username = None
    first_name = None
    last_name = None
    name = models.CharField("name of user", blank=True, max_length=255)
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = []

    objects = MemberManager()

    def __str__(self):
        return self.email
