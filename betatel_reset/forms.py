"""The form behind the public "send a new reset link" pages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import ValidationError

from . import texts
from .addresses import MAX_EMAIL_LENGTH, clean_address
from .exceptions import InvalidAddress

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class ResendForm(forms.Form):
    """One email address, normalised and checked by
    :func:`betatel_reset.addresses.clean_address`, the same rules the service
    applies, so they live in one place.

    Its messages come from :mod:`betatel_reset.texts` (the ``MESSAGES``
    setting changes them); a subclass may still set :attr:`error_messages`.
    """

    error_messages: dict[str, StrOrPromise] = {
        key: texts.get_lazy(key)
        for key in ("required", "invalid", "max_length", "unknown_account")
    }

    email = forms.EmailField(
        label=texts.get_lazy("email_label"),
        max_length=MAX_EMAIL_LENGTH,
        help_text=texts.get_lazy("email_help"),
        widget=forms.EmailInput(attrs={"autocomplete": "email", "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        messages = self.error_messages
        self.fields["email"].error_messages.update(
            {
                "required": messages["required"],
                "invalid": messages["invalid"],
                "max_length": messages["max_length"],
                # Django refuses NUL before clean_email() runs: same wording.
                "null_characters_not_allowed": messages["invalid"],
            }
        )

    def clean_email(self) -> str:
        try:
            return clean_address(self.cleaned_data["email"])
        except InvalidAddress:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None

    def add_unknown_account_error(self) -> None:
        """Mark the address as unknown (only when enumeration is allowed)."""
        self.add_error(
            "email",
            ValidationError(self.error_messages["unknown_account"], code="unknown_account"),
        )
