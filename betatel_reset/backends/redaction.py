"""Betatel's own text made safe to log and show: printable, short, no token."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

#: Upstream text is shown to admins and logged: keep it short and printable.
MAX_MESSAGE_LENGTH = 200


def clean_message(text: str, *, redact: str | None = None) -> str:
    """Upstream text made safe to log and show to admins: printable, short, and
    without ``redact`` (the token, should Betatel echo it back in an error).

    Only the start of a long text is read: plenty for ``MAX_MESSAGE_LENGTH``
    characters once white space is squeezed and copies of the token are cut.
    Cutting before redacting hides nothing: a run of the token in what is
    kept is found there.
    """
    text = text[: 4 * MAX_MESSAGE_LENGTH + 2 * len(redact or "")]
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    if redact:
        printable = _redacted(printable, redact)
    return " ".join(printable.split())[:MAX_MESSAGE_LENGTH]


#: The shortest run of the token's characters removed from upstream text. Any
#: longer run goes, in any case and split by white space or line breaks: an
#: echo of the whole token, an upper-cased copy, a prefix, a piece of its
#: middle. A run of 11 or fewer may stay (such as the start most JWTs share):
#: too little of a 200-character token to matter, and removing shorter runs
#: would start removing ordinary words.
REDACT_MIN_RUN = 12


def _folded(chars: str) -> str:
    """``chars`` case-folded one for one (a character that folds to several,
    like "ß", stays as it is), so positions in it are positions in ``chars``."""
    folded = chars.casefold()
    if len(folded) == len(chars):
        return folded
    return "".join(f if len(f := ch.casefold()) == 1 else ch for ch in chars)


def _redacted(text: str, secret: str) -> str:
    """``text`` with every run of ``REDACT_MIN_RUN`` or more characters of
    ``secret`` replaced by ``[redacted]``; case and white space ignored."""
    folded = _folded("".join(secret.split()))
    run = min(REDACT_MIN_RUN, len(folded))
    if not run:
        return text
    # The text without its white space, and where each kept character stands.
    where = [i for i, ch in enumerate(text) if not ch.isspace()]
    squeezed = _folded("".join(text[i] for i in where))
    spans: list[list[int]] = []
    for start in range(len(squeezed) - run + 1):
        if squeezed[start : start + run] in folded:
            first, last = where[start], where[start + run - 1] + 1
            if spans and first <= spans[-1][1]:
                spans[-1][1] = last
            else:
                spans.append([first, last])
    if not spans:
        return text
    out, done = [], 0
    for first, last in spans:
        out += [text[done:first], "[redacted]"]
        done = last
    out.append(text[done:])
    return "".join(out)
