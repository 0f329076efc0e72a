"""Assertions on the JSON envelope, for a `requests` response (a server process) or a Flask test
response (the in-process app) alike."""
from __future__ import annotations


def body_of(response) -> dict:
    """The parsed JSON body of either kind of response."""
    get_json = getattr(response, "get_json", None)
    return get_json() if get_json is not None else response.json()


def text_of(response) -> str:
    get_data = getattr(response, "get_data", None)
    return get_data(as_text=True) if get_data is not None else response.text


def data_of(response, message: str | None = None, status: int = 200) -> dict:
    """The `data` of a successful envelope (with `message`, when given)."""
    assert response.status_code == status, text_of(response)
    body = body_of(response)
    assert body["success"] is True and body["code"] == status, body
    if message is not None:
        assert body["message"] == message, body
    return body["data"]


def error_of(response, status: int, code: str, param: str | None = None) -> dict:
    """The body of an error envelope with this status and error code (naming `param`, when given);
    never a traceback."""
    assert response.status_code == status, text_of(response)
    body = body_of(response)
    assert body["success"] is False and body["code"] == status, body
    assert body["error"]["error_code"] == code, body
    if param:
        assert param in body["error"]["invalid_params"], body
    assert "Traceback" not in text_of(response)
    return body
