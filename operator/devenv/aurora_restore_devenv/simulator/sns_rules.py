"""SNS Publish rules moto does not enforce, so that what SNS refuses the simulator refuses too.

SNS API reference, Publish, Subject: "Subjects must be UTF-8 text with no line breaks or control characters, and
less than 100 characters long." moto checks the length only (its check raises ValueError, which its Publish
answers with InvalidParameter); this adds the line breaks and control characters, answered the same way.
"""

from __future__ import annotations

import unicodedata

from moto.sns.models import SNSBackend

_installed = False


def subject_problem(subject: str | None) -> str | None:
    """Why SNS refuses `subject`, or None."""
    if subject is None:
        return None
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in subject):
        return "Subject must not contain line breaks or control characters"
    if len(subject) >= 100:
        return "Subject must be less than 100 characters"
    return None


def install() -> None:
    """Wrap moto's SNSBackend.publish once per process."""
    global _installed
    if _installed:
        return
    original = SNSBackend.publish

    def publish(self, message, arn, phone_number=None, subject=None, *args, **kwargs):
        problem = subject_problem(subject)
        if problem is not None:
            raise ValueError(problem)
        return original(self, message, arn, phone_number, subject, *args, **kwargs)

    SNSBackend.publish = publish
    _installed = True
