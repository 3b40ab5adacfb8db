"""The launch's refusal: every failure of the LTI flow becomes one of these (a 4xx page
with an ``lti_…`` code), never a bare exception."""

from __future__ import annotations

from pylti1p3.exception import LtiException


class LaunchRefused(LtiException):
    """A launch refused for a reason worth telling the user (status and code attached).
    ``params`` fill ``%(name)s`` placeholders after translation."""

    def __init__(self, message: str, code: str = "lti_refused", status: int = 400, **params):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.params = params
