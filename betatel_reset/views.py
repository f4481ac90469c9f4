"""The public pages: "send a new reset link" and "this reset link has expired".

Both answer an unknown account exactly like a real send (unless
``BETATEL_RESET['PREVENT_ENUMERATION']`` is off), never show Betatel's own text,
and never answer with a 500: every way a resend can fail maps to a status and a
message that tells the user what to do.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView

from . import delivery, texts
from .conf import app_settings
from .exceptions import (
    AddressRejected,
    BetatelResetError,
    ConfigurationError,
    InvalidAddress,
    RateLimitExceeded,
)
from .forms import ResendForm

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

#: The cookie the expired-link page keeps an address in between the redirect
#: and the page view: signed, scoped to the page's path, read once.
PREFILL_COOKIE = "betatel_reset_prefill"
#: How long the address may wait for that page view, in seconds.
PREFILL_MAX_AGE = 300


@method_decorator(
    [login_not_required, sensitive_post_parameters("email"), csrf_protect, never_cache],
    name="dispatch",
)
class ResendView(FormView):  # type: ignore[type-arg]  # not generic at runtime
    """Ask Betatel to resend the reset email, then redirect back with a message."""

    #: FormView would handle PUT like POST (with an empty form); a page has no PUT.
    http_method_names = ["get", "post", "head", "options"]
    form_class = ResendForm
    template_name = "betatel_reset/resend.html"
    success_url = reverse_lazy("betatel_reset:resend")
    title: StrOrPromise = texts.get_lazy("resend_title")
    #: Deprecated: set ``MESSAGES["sent"]`` and ``MESSAGES["unavailable"]``.
    success_message: StrOrPromise | None = None
    unavailable_message: StrOrPromise | None = None

    def setup(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().setup(request, *args, **kwargs)
        if self.success_message is not None or self.unavailable_message is not None:
            warnings.warn(
                "ResendView's success_message and unavailable_message are deprecated: "
                "set BETATEL_RESET['MESSAGES']['sent'] and ['unavailable'] instead.",
                DeprecationWarning,
                stacklevel=2,
            )

    def text(self, key: str, **values: Any) -> str:
        """A sentence from :mod:`betatel_reset.texts` (or a deprecated attribute)."""
        legacy = {"sent": self.success_message, "unavailable": self.unavailable_message}
        if legacy.get(key) is not None:
            return str(legacy[key])
        return texts.format(key, **values)

    def form_valid(self, form: ResendForm) -> HttpResponse:
        started = time.monotonic()
        address = form.cleaned_data["email"]
        try:
            # Sent now or queued, as BETATEL_RESET["DELIVERY"] says.
            delivery.resend(address, request=self.request)
        except AddressRejected:
            if not app_settings.PREVENT_ENUMERATION:
                form.add_unknown_account_error()
                return self.form_invalid(form)
        except InvalidAddress:
            form.add_error(
                "email", ValidationError(form.error_messages["invalid"], code="invalid")
            )
            return self.form_invalid(form)
        except RateLimitExceeded as exc:
            return self.rate_limited(form, exc)
        except (BetatelResetError, ConfigurationError):
            # Betatel down, slow, rate limiting us or rejecting our token, the
            # circuit open, or the site misconfigured: the user can only wait.
            form.add_error(None, self.text("unavailable"))
            return self.answered(
                self.render_to_response(self.get_context_data(form=form), status=503)
            )
        # The address the user typed, so a typo shows at once: their own input,
        # shown whether or not an account has it.
        messages.success(self.request, self.text("sent", address=address))
        delivery.pad_to_floor(started)
        return super().form_valid(form)

    def form_invalid(self, form: ResendForm) -> HttpResponse:
        return self.render_to_response(self.get_context_data(form=form), status=400)

    def rate_limited(self, form: ResendForm, exc: RateLimitExceeded) -> HttpResponse:
        seconds = max(1, math.ceil(exc.retry_after or 60))
        if seconds < 60:
            wait = self.text("wait_seconds", count=seconds)
        else:
            wait = self.text("wait_minutes", count=math.ceil(seconds / 60))
        form.add_error(None, self.text("rate_limited", wait=wait))
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = str(seconds)
        return self.answered(response)

    @staticmethod
    def answered(response: HttpResponse) -> HttpResponse:
        """Mark a 503 or 429 as logged already: the service logged the attempt,
        and an outage is announced once, when the circuit opens. Else Django
        logs every 5xx at ERROR (``django.request``), which a stock production
        ``LOGGING`` mails to ``ADMINS``: two emails per user while Betatel is
        down. (``_has_been_logged`` is the flag Django's ``log_response`` reads.)
        """
        response._has_been_logged = True  # type: ignore[attr-defined]
        return response

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update({"title": self.title, **(self.extra_context or {})})
        return context


class ExpiredLinkView(ResendView):
    """Where a site sends users whose reset link has expired.

    A link may carry the address, ``?email=ada@example.com``, to fill in the
    form. Like Django's reset-confirm view does with its token, the page takes
    it out of the URL at once, so it does not linger in the address bar,
    history or ``Referer`` headers: the address goes into a short-lived signed
    cookie scoped to this page's path (HttpOnly, SameSite=Lax, Secure over
    HTTPS), and the browser is redirected to the clean URL, whose view reads
    the cookie once and deletes it. Nothing is written on the server: these
    GETs are the links users arrive by, and neither a flood of them nor a
    database outage may touch the session table.
    """

    template_name = "betatel_reset/expired.html"
    success_url = reverse_lazy("betatel_reset:expired")
    title = texts.get_lazy("expired_title")
    prefill_parameter = "email"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if self.prefill_parameter in request.GET:
            return self.stash_prefill()
        response = super().get(request, *args, **kwargs)
        if PREFILL_COOKIE in request.COOKIES:
            response.delete_cookie(PREFILL_COOKIE, path=self.cookie_path, samesite="Lax")
        return response

    @property
    def cookie_path(self) -> str:
        """This page's path, with or without its trailing slash."""
        return self.request.path.rstrip("/") or "/"

    def stash_prefill(self) -> HttpResponse:
        """Keep a valid address for the next page view; drop an invalid one."""
        query = self.request.GET.copy()
        form = self.get_form_class()(data={"email": query.pop(self.prefill_parameter)[-1]})
        url = self.request.path + (f"?{query.urlencode()}" if query else "")
        response = HttpResponseRedirect(url)
        response["Referrer-Policy"] = "no-referrer"
        if form.is_valid():
            response.set_signed_cookie(
                PREFILL_COOKIE,
                form.cleaned_data["email"],
                salt=PREFILL_COOKIE,
                max_age=PREFILL_MAX_AGE,
                path=self.cookie_path,
                secure=self.request.is_secure(),
                httponly=True,
                samesite="Lax",
            )
        else:
            response.delete_cookie(PREFILL_COOKIE, path=self.cookie_path, samesite="Lax")
        return response

    def get_initial(self) -> dict[str, Any]:
        initial = super().get_initial()
        if self.request.method == "GET":
            address = self.request.get_signed_cookie(
                PREFILL_COOKIE, default=None, salt=PREFILL_COOKIE, max_age=PREFILL_MAX_AGE
            )
            if address is not None:
                initial["email"] = address
        return initial
