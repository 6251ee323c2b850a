"""The one place where errors become HTTP statuses (and back, for the client)."""

from __future__ import annotations

from typing import Any

from infraveil.core import errors

STATUS_BY_CODE: dict[str, int] = {
    errors.UnknownServiceError.code: 404,
    errors.NotFoundError.code: 404,
    errors.CommandRefusedError.code: 409,
    errors.ManifestError.code: 422,
    errors.PayloadError.code: 422,
    "bad_request": 400,
}


def status_for(error: errors.InfraveilError) -> int:
    return STATUS_BY_CODE.get(error.code, 500)


def error_body(code: str, message: str, hint: str = "", **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "hint": hint, **extra}}


def error_from_body(body: dict[str, Any]) -> errors.InfraveilError:
    """Rebuild the error the agent reported, so the CLI maps it to its exit code."""
    info = body.get("error") or {}
    code, message, hint = info.get("code", ""), info.get("message", ""), info.get("hint", "")
    if code == errors.UnknownServiceError.code:
        return errors.UnknownServiceError(info.get("name", "?"), info.get("known", []))
    if code == errors.CommandRefusedError.code:
        service = info.get("service") or {}
        return errors.CommandRefusedError(message, hint=hint, state=service.get("state"))
    if code == errors.NotFoundError.code:
        return errors.NotFoundError(message, hint=hint)
    if code == errors.PayloadError.code:
        return errors.PayloadError(message, hint=hint)
    return errors.ApiError(message or "the agent answered with an error", hint=hint)
