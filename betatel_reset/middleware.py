"""``FormCharsetMiddleware``: a 400, not a 500, for a form body that declares
a charset other than UTF-8.

Django refuses ``application/x-www-form-urlencoded; charset=utf-16`` (or any
charset but UTF-8) with ``BadRequest`` the first time ``request.POST`` is
read, in ``CsrfViewMiddleware`` on every POST. Its 400 and 500 handlers then
run the CSRF check again, which reads ``request.POST`` again and raises again,
so the exception leaves Django and the server answers 500, on every page of
the site. This middleware answers such a request with a 400 before anything
reads the body. Put it before ``CsrfViewMiddleware``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

FORM = "application/x-www-form-urlencoded"


class FormCharsetMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.method == "POST"
            and request.content_type == FORM
            and request.encoding is not None
            # Exactly what Django refuses (it takes no "utf8" either).
            and request.encoding.lower() != "utf-8"
        ):
            return HttpResponseBadRequest(
                "Form data must be UTF-8 encoded.", content_type="text/plain; charset=utf-8"
            )
        return self.get_response(request)
