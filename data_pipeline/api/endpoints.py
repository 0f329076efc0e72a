"""Declaring endpoints once: the route, its request schemas, and its OpenAPI description.

    @endpoint(bp, "/tasks", methods=["POST"], body=CreateTaskRequest, status=201,
              summary="创建任务", tag="tasks")
    def create_task(body: CreateTaskRequest): ...

The decorator parses and validates the JSON body and the query string with the pydantic models
(strict types: `"yes"` is not a boolean, `"5"` is not an integer in a JSON body) and turns every
problem into a ValidationError naming the parameters. The same declarations produce
GET /api/v0/openapi.json.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from flask import Blueprint, request
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from data_pipeline.api.guards import SAFE_METHODS
from data_pipeline.errors import UnsupportedMediaTypeError, ValidationError


class RequestBody(BaseModel):
    """Base of JSON request bodies: strict types, unknown parameters refused."""
    model_config = ConfigDict(strict=True, extra="forbid")


class QueryParameters(BaseModel):
    """Base of query strings: values arrive as text, so numbers are converted (but must be numbers)."""
    model_config = ConfigDict(strict=False, extra="forbid")


@dataclass
class EndpointSpec:
    endpoint: str
    rule: str
    method: str
    summary: str
    tag: str
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    multipart: dict[str, str] = field(default_factory=dict)   # field name -> description
    binary_response: bool = False
    raw_response: bool = False
    public: bool = False
    description: str = ""
    response: str | None = None   # name of the `data` schema in api/responses.py


_MESSAGES = {
    "missing": "缺少必需参数",
    "extra_forbidden": "不支持的参数",
    "bool_type": "必须是布尔值 (true/false)",
    "bool_parsing": "必须是布尔值 (true/false)",
    "int_type": "必须是整数",
    "int_parsing": "必须是整数",
    "int_from_float": "必须是整数",
    "string_type": "必须是字符串",
    "list_type": "必须是数组",
    "dict_type": "必须是对象",
    "model_type": "必须是对象",
}


def describe_errors(exc: PydanticValidationError) -> tuple[str, list[str]]:
    """One Chinese sentence per problem, and the parameters concerned (in order, no repeats)."""
    details, params = [], []
    for error in exc.errors(include_url=False):
        name = ".".join(str(part) for part in error["loc"]) or "body"
        kind = error["type"]
        if kind in _MESSAGES:
            text = _MESSAGES[kind]
        elif kind == "literal_error":
            text = f"取值无效，可选值: {error.get('ctx', {}).get('expected', '')}"
        elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
            bound = next(iter(error.get("ctx", {}).values()), "")
            text = {"greater_than_equal": "必须大于等于", "greater_than": "必须大于",
                    "less_than_equal": "必须小于等于", "less_than": "必须小于"}[kind] + f" {bound}"
        elif kind in ("string_too_long", "too_long"):
            text = f"长度不能超过 {error.get('ctx', {}).get('max_length', '')}"
        elif kind in ("string_too_short", "too_short"):
            text = f"长度不能少于 {error.get('ctx', {}).get('min_length', '')}"
        elif kind == "value_error":
            text = str(error.get("ctx", {}).get("error", error["msg"]))
        else:
            text = error["msg"]
        details.append(f"参数 {name} {text}")
        top = str(error["loc"][0]) if error["loc"] else "body"
        if top not in params:
            params.append(top)
    return "; ".join(details), params


def _holds_nul(value: Any) -> bool:
    # A stack, not recursion: a body nested a thousand levels deep is a client's input like any other.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _validate(model: type[BaseModel], data: Any) -> BaseModel:
    # PostgreSQL text cannot hold NUL: refused here as the client's error, for every parameter,
    # instead of failing later in the store or a business database as a 500.
    with_nul = [str(key) for key, value in data.items() if _holds_nul(key) or _holds_nul(value)]
    if with_nul:
        raise ValidationError("; ".join(f"参数 {name[:80]!r} 不能包含空字符 (NUL)" for name in with_nul),
                              invalid_params=with_nul)
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        details, params = describe_errors(exc)
        raise ValidationError(details, invalid_params=params) from None


def require_json_content_type() -> None:
    """A change's body, if it has one, must be declared `application/json`: a page on another site
    can send text/plain or form data without asking, but JSON only after a CORS preflight the
    service never grants."""
    if request.mimetype == "application/json":
        return
    if request.mimetype or request.get_data(cache=True):
        shown = (request.content_type or "无")[:100]
        raise UnsupportedMediaTypeError(f"请求体必须是JSON（Content-Type: application/json），收到的 Content-Type: {shown}",
                                        invalid_params=["Content-Type"])


def parse_json_body(model: type[BaseModel]) -> BaseModel:
    raw = request.get_data(cache=True)
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[..." nested too deep
            raise ValidationError("请求体不是有效的JSON", invalid_params=["body"]) from None
    if not isinstance(data, dict):
        raise ValidationError("请求体必须是JSON对象", invalid_params=["body"])
    return _validate(model, data)


def parse_query(model: type[BaseModel]) -> BaseModel:
    data: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        data[key] = values if len(values) > 1 else values[0]
    return _validate(model, data)


_SPECS = "endpoint_specs"  # where @endpoint keeps a blueprint's declarations


def declared_endpoints(blueprint: Blueprint) -> list[EndpointSpec]:
    """The endpoints `@endpoint` declared on a blueprint (none for the console's page)."""
    return blueprint.__dict__.get(_SPECS, [])


def endpoint(blueprint: Blueprint, rule: str, *, methods: list[str], summary: str, tag: str,
             body: type[BaseModel] | None = None, query: type[BaseModel] | None = None, status: int = 200,
             multipart: dict[str, str] | None = None, binary_response: bool = False, raw_response: bool = False,
             public: bool = False, description: str = "", response: str | None = None) -> Callable:
    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def handle(**path_values):
            kwargs = dict(path_values)
            if not multipart and request.method not in SAFE_METHODS:
                require_json_content_type()
            if body is not None:
                kwargs["body"] = parse_json_body(body)
            if query is not None:
                kwargs["query"] = parse_query(query)
            return view(**kwargs)

        blueprint.add_url_rule(rule, endpoint=view.__name__, view_func=handle, methods=methods)
        specs = blueprint.__dict__.setdefault(_SPECS, [])
        for method in methods:
            specs.append(EndpointSpec(endpoint=view.__name__, rule=(blueprint.url_prefix or "") + rule, method=method.lower(),
                                      summary=summary, tag=tag, status=status, body=body, query=query,
                                      multipart=multipart or {}, binary_response=binary_response,
                                      raw_response=raw_response, public=public, description=description,
                                      response=response))
        return handle
    return decorator
