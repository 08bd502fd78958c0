import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 32


class StrictJSONParser(JSONParser):
    """JSON that the database can store: no NaN/Infinity, no NUL characters, no lone
    surrogates, bounded nesting. Anything else is a 400 here instead of a 500 later."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding)
            data = json.loads(text, parse_constant=_reject_constant)
        except UnicodeDecodeError as exc:
            raise ParseError(f"The request body is not valid {encoding}.") from exc
        except RecursionError as exc:
            raise ParseError("JSON nesting is too deep.") from exc
        except ValueError as exc:
            raise ParseError(f"Malformed JSON: {exc}") from exc
        _check(data, depth=0)
        return data


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed in JSON")


def _check(value, *, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise ParseError(f"JSON nesting is deeper than {MAX_JSON_DEPTH} levels.")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check(item, depth=depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth=depth + 1)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise ParseError("Strings may not contain NUL (\\u0000) characters.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ParseError("Strings may not contain unpaired surrogates.") from exc
