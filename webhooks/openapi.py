"""The OpenAPI document of the JSON API, served at /api/openapi.json."""

_ERROR = {"type": "object", "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
          "required": ["error", "message"]}
_TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "阳光信贷助手 API", "version": "0.1.0",
             "description": "JSON API for the authorization H5 page / mini-program and the officer console."},
    "paths": {
        "/api/authorizations/{token}": {
            "get": {
                "summary": "The credit-report authorization request a token opens",
                "parameters": [_TOKEN],
                "responses": {
                    "200": {"description": "The request, with the party's ID number masked",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Authorization"}}}},
                    "404": {"description": "Unknown, used or expired token",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                },
            }
        },
        "/api/authorizations/{token}/qr.png": {
            "get": {
                "summary": "QR code (PNG) of the authorization link",
                "parameters": [_TOKEN],
                "responses": {
                    "200": {"description": "PNG image", "content": {"image/png": {}}},
                    "404": {"description": "Unknown, used or expired token",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                },
            }
        },
    },
    "components": {
        "schemas": {
            "Error": _ERROR,
            "Authorization": {
                "type": "object",
                "properties": {
                    "party_name": {"type": "string"},
                    "party_role": {"type": "string", "enum": ["applicant", "spouse", "guarantor"]},
                    "party_role_name": {"type": "string"},
                    "party_id_masked": {"type": "string", "example": "3212********0119"},
                    "purpose": {"type": "string"},
                    "requested_by": {"type": "string"},
                    "expires_at": {"type": "string", "format": "date-time"},
                    "status": {"type": "string"},
                },
            },
        }
    },
}
