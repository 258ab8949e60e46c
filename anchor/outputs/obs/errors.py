"""What can go wrong with an OBS: not reachable (ObsUnavailable) or a request OBS refused (ObsRequestError)."""

from __future__ import annotations

from typing import Any

from anchor.outputs.base import OutputError

# obs-websocket 5 RequestStatus codes, to name them in errors (OBS sends the number and a comment).
REQUEST_STATUS = {
    203: "MissingRequestType", 204: "UnknownRequestType", 205: "GenericError",
    206: "UnsupportedRequestBatchExecutionType", 207: "NotReady", 300: "MissingRequestField",
    301: "MissingRequestData", 400: "InvalidRequestField", 401: "InvalidRequestFieldType",
    402: "RequestFieldOutOfRange", 403: "RequestFieldEmpty", 404: "TooManyRequestFields",
    500: "OutputRunning", 501: "OutputNotRunning", 502: "OutputPaused", 503: "OutputNotPaused",
    504: "OutputDisabled", 505: "StudioModeActive", 506: "StudioModeNotActive", 600: "ResourceNotFound",
    601: "ResourceAlreadyExists", 602: "InvalidResourceType", 603: "NotEnoughResources",
    604: "InvalidResourceState", 605: "InvalidInputKind", 606: "ResourceNotConfigurable",
    607: "InvalidFilterKind", 700: "ResourceCreationFailed", 701: "ResourceActionFailed",
    702: "RequestProcessingFailed", 703: "CannotAct",
}



class ObsError(OutputError):
    """Something about OBS went wrong; the message says which OBS and what."""


class ObsUnavailable(ObsError):
    """Not connected to OBS (down, frozen, refused, wrong password), or the connection broke mid-request."""


class ObsRequestError(ObsError):
    """OBS answered a request with a failure status."""

    def __init__(self, connection: str, request: str, data: dict[str, Any], code: int | None,
                 comment: str | None) -> None:
        self.connection = connection
        self.request = request
        self.data = data
        self.code = code
        self.comment = comment
        status = f"code {code} {REQUEST_STATUS.get(code, '')}".rstrip() if code is not None else "no status code"
        detail = f": {comment}" if comment else ""
        super().__init__(f"OBS '{connection}': request {request} failed ({status}){detail}")


class PlaybackLost(Exception):
    """The program started but OBS lost it midway; the message says how."""
