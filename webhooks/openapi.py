"""The OpenAPI document of the JSON API, served at /api/openapi.json."""

_ERROR = {"type": "object", "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
          "required": ["error", "message"]}
_JSON_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
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
        # -- the officer console (session cookie from /console/login; POSTs need X-CSRF-Token) --
        "/api/console/changes": {
            "get": {
                "summary": "A version that changes whenever a hand-off, message or application changes",
                "responses": {"200": {"description": "{\"version\": \"...\"}"},
                              "401": {"description": "Not logged in", "content": _JSON_ERROR}},
            }
        },
        "/api/console/queue": {
            "get": {
                "summary": "Open hand-offs the officer sees (own and branch queue; supervisors all) and "
                           "applications awaiting review, most urgent first",
                "parameters": [{"name": "officer", "in": "query", "required": False, "schema": {"type": "integer"},
                                "description": "supervisors: one officer's queue"}],
                "responses": {"200": {"description": "{hand_offs: [...], applications: [...]}"},
                              "401": {"description": "Not logged in", "content": _JSON_ERROR}},
            }
        },
        "/api/console/hand-offs/{id}/messages": {
            "get": {
                "summary": "The customer's messages kept for officers, and officers' replies with their delivery",
                "parameters": [_ID],
                "responses": {"200": {"description": "{status, status_label, officer, messages: [...]}"},
                              "401": {"description": "Not logged in", "content": _JSON_ERROR},
                              "403": {"description": "Another officer's conversation", "content": _JSON_ERROR},
                              "404": {"description": "No such hand-off", "content": _JSON_ERROR}},
            }
        },
        "/api/console/hand-offs/{id}/replies": {
            "post": {
                "summary": "Reply to the customer (sent through the customer-service message API by a worker)",
                "parameters": [_ID],
                "requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {
                    "type": "object", "properties": {"text": {"type": "string"}, "csrf": {"type": "string"}},
                    "required": ["text"]}}}},
                "responses": {"201": {"description": "The stored reply, status queued"},
                              "400": {"description": "Missing or forged CSRF token", "content": _JSON_ERROR},
                              "403": {"description": "Another officer's conversation", "content": _JSON_ERROR},
                              "409": {"description": "Closed hand-off, empty or too long reply",
                                      "content": _JSON_ERROR}},
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
