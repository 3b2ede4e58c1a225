# SPDX-License-Identifier: GPL-2.0
"""JSON for the protocol without importing `json` (json.decoder/encoder import `re`, which dominates start-up)."""

# The C scanner and encoder from `_json` do the work; falls back to the `json` module if `_json` is missing.


class _ScanContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        raise ValueError(f"non-standard JSON constant {name}")


def _no_default(obj: object) -> str:
    return repr(obj)


def _make_codec():
    try:
        import _json

        scanner = _json.make_scanner(_ScanContext())
        encoder = _json.make_encoder(
            None, _no_default, _json.encode_basestring_ascii, None, ":", ",", False, False, True
        )

        def loads(text: str):
            text = text.strip()
            try:
                obj, end = scanner(text, 0)
            except StopIteration as e:
                raise ValueError(f"expecting a JSON value at char {e.value}") from None
            if end != len(text):
                raise ValueError(f"extra data after the JSON value at char {end}")
            return obj

        def dumps(obj) -> str:
            return "".join(encoder(obj, 0))

        dumps({"probe": [1, "x", None, True, 1.5]})
        return loads, dumps
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - other Pythons
        import json

        return json.loads, lambda obj: json.dumps(obj, separators=(",", ":"), default=_no_default)


json_loads, json_dumps = _make_codec()
