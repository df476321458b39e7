"""JSON schemas of the OCI image documents, written from the image-spec (v1.1) text.

The spec's own schema files are not packaged for Debian or PyPI and this machine cannot
fetch them, so the rules kit's documents must meet are restated here, field by field, from
the spec's prose (descriptor.md, manifest.md, image-index.md, config.md, image-layout.md).
Why jsonschema (a test-only PyPI dependency): the spec publishes its rules as JSON Schema,
and validating with the real validator keeps these rules in the spec's own shape instead of
hand-written checks that would drift from it.
"""

from __future__ import annotations

from typing import Any

DIGEST = r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"
MEDIA_TYPE = r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$"

_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_STRINGS = {"type": "array", "items": {"type": "string"}}

PLATFORM: dict[str, Any] = {
    "type": "object",
    "required": ["architecture", "os"],
    "properties": {
        "architecture": {"type": "string"},
        "os": {"type": "string"},
        "os.version": {"type": "string"},
        "os.features": _STRINGS,
        "variant": {"type": "string"},
    },
}

DESCRIPTOR: dict[str, Any] = {
    "type": "object",
    "required": ["mediaType", "digest", "size"],
    "properties": {
        "mediaType": {"type": "string", "pattern": MEDIA_TYPE},
        "digest": {"type": "string", "pattern": DIGEST},
        "size": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
        "urls": {"type": "array", "items": {"type": "string", "format": "uri"}},
        "annotations": _STRING_MAP,
        "data": {"type": "string", "contentEncoding": "base64"},
        "artifactType": {"type": "string", "pattern": MEDIA_TYPE},
        "platform": PLATFORM,
    },
}

MANIFEST: dict[str, Any] = {
    "type": "object",
    "required": ["schemaVersion", "config", "layers"],
    "properties": {
        "schemaVersion": {"type": "integer", "minimum": 2, "maximum": 2},
        "mediaType": {"const": "application/vnd.oci.image.manifest.v1+json"},
        "config": DESCRIPTOR,
        "layers": {"type": "array", "items": DESCRIPTOR},
        "annotations": _STRING_MAP,
    },
}

INDEX: dict[str, Any] = {
    "type": "object",
    "required": ["schemaVersion", "manifests"],
    "properties": {
        "schemaVersion": {"type": "integer", "minimum": 2, "maximum": 2},
        "mediaType": {"const": "application/vnd.oci.image.index.v1+json"},
        "manifests": {"type": "array", "items": DESCRIPTOR},
        "annotations": _STRING_MAP,
    },
}

CONFIG: dict[str, Any] = {
    "type": "object",
    "required": ["architecture", "os", "rootfs"],
    "properties": {
        "created": {"type": "string", "format": "date-time"},
        "author": {"type": "string"},
        "architecture": {"type": "string"},
        "os": {"type": "string"},
        "variant": {"type": "string"},
        "config": {
            "type": ["object", "null"],
            "properties": {
                "User": {"type": "string"},
                "ExposedPorts": {"type": "object"},
                "Env": _STRINGS,
                "Entrypoint": {"type": ["array", "null"], "items": {"type": "string"}},
                "Cmd": {"type": ["array", "null"], "items": {"type": "string"}},
                "Volumes": {"type": "object"},
                "WorkingDir": {"type": "string"},
                "Labels": _STRING_MAP,
                "StopSignal": {"type": "string"},
            },
        },
        "rootfs": {
            "type": "object",
            "required": ["type", "diff_ids"],
            "properties": {
                "type": {"enum": ["layers"]},
                "diff_ids": {"type": "array", "items": {"type": "string", "pattern": DIGEST}},
            },
        },
        "history": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "created": {"type": "string", "format": "date-time"},
                    "author": {"type": "string"},
                    "created_by": {"type": "string"},
                    "comment": {"type": "string"},
                    "empty_layer": {"type": "boolean"},
                },
            },
        },
    },
}

LAYOUT: dict[str, Any] = {
    "type": "object",
    "required": ["imageLayoutVersion"],
    "properties": {"imageLayoutVersion": {"type": "string"}},
}


def validate(document: Any, schema: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError naming the field if ``document`` breaks a rule."""
    import jsonschema

    jsonschema.validate(document, schema, format_checker=jsonschema.FormatChecker())
