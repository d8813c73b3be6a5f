// The pose service's API as OpenAPI 3.1. service_test checks that every route served is described here and every
// path described is served, with the same methods.
#include "pose/service/service.h"

namespace pose::service {
namespace {

constexpr const char* kDocument = R"json({
  "openapi": "3.1.0",
  "info": {
    "title": "pose service",
    "version": "1",
    "description": "Real-time exercise analysis of camera, RTSP and file streams: streams, live results over WebSocket, stored events, exercises. docs/api.md has the details."
  },
  "components": {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    "schemas": {
      "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["status", "message"], "properties": {"status": {"type": "integer"}, "message": {"type": "string"}}}}},
      "StreamRequest": {
        "type": "object", "required": ["source"], "additionalProperties": false,
        "properties": {
          "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
          "source": {"type": "string", "description": "a file in a media folder, a camera (/dev/video0, camera:0) or rtsp://, rtsps://, http://, https://"},
          "exercise": {"type": "string", "default": "auto"},
          "realtime": {"type": "boolean", "default": true},
          "loops": {"type": "integer", "minimum": 0, "default": 1},
          "max_side": {"type": "integer", "minimum": 0, "default": 640},
          "start": {"type": "boolean", "default": true}
        }
      },
      "StreamSettings": {
        "type": "object", "additionalProperties": false,
        "properties": {"exercise": {"type": "string"}, "realtime": {"type": "boolean"}, "loops": {"type": "integer", "minimum": 0}, "max_side": {"type": "integer", "minimum": 0}}
      },
      "Stream": {
        "type": "object", "required": ["id", "source", "exercise", "settings", "state", "stats", "people"],
        "properties": {
          "id": {"type": "string"}, "source": {"type": "string", "description": "credentials replaced by ***"},
          "exercise": {"type": "string"},
          "settings": {"type": "object", "properties": {"realtime": {"type": "boolean"}, "loops": {"type": "integer"}, "max_side": {"type": "integer"}}},
          "state": {"enum": ["created", "opening", "running", "ended", "failed", "stopped"]},
          "message": {"type": "string"},
          "created_at": {"type": "string", "format": "date-time"},
          "started_at": {"type": ["string", "null"], "format": "date-time"},
          "stats": {"type": "object", "properties": {"frames_decoded": {"type": "integer"}, "frames_analysed": {"type": "integer"}, "frames_dropped": {"type": "integer"}, "reconnects": {"type": "integer"}, "fps": {"type": "number"}}},
          "people": {"type": "array", "items": {"type": "object", "properties": {"person": {"type": "integer"}, "exercise": {"type": "string"}, "reps": {"type": "integer"}, "phase": {"type": "string"}, "issues": {"type": "array", "items": {"type": "string"}}}}}
        }
      },
      "StreamList": {"type": "object", "required": ["streams"], "properties": {"streams": {"type": "array", "items": {"$ref": "#/components/schemas/Stream"}}}},
      "StoredEvent": {
        "type": "object", "required": ["id", "stream", "kind", "time", "event"],
        "properties": {"id": {"type": "integer"}, "stream": {"type": "string"}, "kind": {"enum": ["rep", "form", "anomaly", "status"]}, "person": {"type": ["integer", "null"]}, "exercise": {"type": "string"}, "time": {"type": "string", "format": "date-time"}, "event": {"type": "object", "description": "the event as sent live (docs/api.md)"}}
      },
      "EventPage": {"type": "object", "required": ["events", "next"], "properties": {"events": {"type": "array", "items": {"$ref": "#/components/schemas/StoredEvent"}}, "next": {"type": ["integer", "null"]}}},
      "Sessions": {"type": "object", "required": ["sessions", "truncated"], "properties": {"truncated": {"type": "boolean"}, "sessions": {"type": "array", "items": {"type": "object", "properties": {"stream": {"type": "string"}, "person": {"type": "integer"}, "exercise": {"type": "string"}, "reps": {"type": "integer"}, "form_issues": {"type": "integer"}, "anomalies": {"type": "integer"}, "first": {"type": "string", "format": "date-time"}, "last": {"type": "string", "format": "date-time"}}}}}},
      "Exercise": {"type": "object", "required": ["name", "kind"], "properties": {"name": {"type": "string"}, "description": {"type": "string"}, "views": {"type": "array", "items": {"type": "string"}}, "key_angles": {"type": "array", "items": {"type": "string"}}, "kind": {"enum": ["reps", "hold"]}, "rules": {"type": "array", "items": {"type": "string"}}, "custom": {"type": "boolean"}, "definition": {"type": "string", "description": "TOML (GET of one exercise)"}}},
      "ExerciseList": {"type": "object", "required": ["exercises"], "properties": {"exercises": {"type": "array", "items": {"$ref": "#/components/schemas/Exercise"}}}}
    },
    "parameters": {
      "StreamId": {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
      "From": {"name": "from", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 or microseconds since the epoch; inclusive"},
      "To": {"name": "to", "in": "query", "schema": {"type": "string"}, "description": "RFC 3339 or microseconds since the epoch; exclusive"}
    },
    "responses": {
      "BadRequest": {"description": "Malformed JSON, a missing or mistyped field, a bad parameter", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unauthorized": {"description": "Missing or wrong token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "NotFound": {"description": "Unknown id", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Conflict": {"description": "The stream's state does not allow it", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unprocessable": {"description": "Well-formed but impossible: unknown exercise, source outside the media folders, unsupported URL scheme, invalid exercise definition", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unavailable": {"description": "The event store cannot be read now", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    }
  },
  "security": [{"bearer": []}, {}],
  "paths": {
    "/healthz": {"get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "The process serves"}}}},
    "/readyz": {"get": {"summary": "Readiness: model loaded, store taking writes", "security": [], "responses": {"200": {"description": "Ready"}, "503": {"description": "Not ready; checks say why"}}}},
    "/metrics": {"get": {"summary": "Prometheus metrics", "security": [], "responses": {"200": {"description": "Prometheus text format 0.0.4", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    "/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    "/": {"get": {"summary": "The web dashboard", "security": [], "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}}}},
    "/assets/{file}": {"get": {"summary": "The dashboard's scripts and styles", "security": [], "parameters": [{"name": "file", "in": "path", "required": true, "schema": {"type": "string"}}], "responses": {"200": {"description": "The file"}, "404": {"$ref": "#/components/responses/NotFound"}}}},
    "/api/v1/streams": {
      "get": {"summary": "Every stream", "responses": {"200": {"description": "The streams", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StreamList"}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}},
      "post": {"summary": "Add a stream (and start it)", "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StreamRequest"}}}},
        "responses": {"201": {"description": "Added", "headers": {"Location": {"schema": {"type": "string"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Stream"}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "409": {"$ref": "#/components/responses/Conflict"}, "413": {"description": "Body too large"}, "415": {"description": "Not JSON"}, "422": {"$ref": "#/components/responses/Unprocessable"}}}
    },
    "/api/v1/streams/{id}": {
      "parameters": [{"$ref": "#/components/parameters/StreamId"}],
      "get": {"summary": "One stream", "responses": {"200": {"description": "The stream", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Stream"}}}}, "404": {"$ref": "#/components/responses/NotFound"}}},
      "patch": {"summary": "Change a stopped stream's settings", "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StreamSettings"}}}},
        "responses": {"200": {"description": "Changed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Stream"}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "404": {"$ref": "#/components/responses/NotFound"}, "409": {"$ref": "#/components/responses/Conflict"}, "422": {"$ref": "#/components/responses/Unprocessable"}}},
      "delete": {"summary": "Stop and forget a stream (its stored events stay)", "responses": {"204": {"description": "Deleted"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "404": {"$ref": "#/components/responses/NotFound"}}}
    },
    "/api/v1/streams/{id}/start": {"parameters": [{"$ref": "#/components/parameters/StreamId"}], "post": {"summary": "Start a stream that is not running", "responses": {"200": {"description": "Starting", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Stream"}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}, "404": {"$ref": "#/components/responses/NotFound"}, "409": {"$ref": "#/components/responses/Conflict"}, "422": {"$ref": "#/components/responses/Unprocessable"}}}},
    "/api/v1/streams/{id}/stop": {"parameters": [{"$ref": "#/components/parameters/StreamId"}], "post": {"summary": "Stop a stream", "responses": {"200": {"description": "Stopping", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Stream"}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}, "404": {"$ref": "#/components/responses/NotFound"}}}},
    "/api/v1/streams/{id}/live": {
      "parameters": [{"$ref": "#/components/parameters/StreamId"}],
      "get": {"summary": "WebSocket: frames, events, status, images and heartbeats of one stream (docs/api.md lists the messages)",
        "parameters": [
          {"name": "frames", "in": "query", "schema": {"type": "boolean", "default": true}},
          {"name": "keypoints", "in": "query", "schema": {"type": "boolean", "default": true}},
          {"name": "jpeg_fps", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 30, "default": 0}},
          {"name": "last_event_id", "in": "query", "schema": {"type": "integer", "minimum": 0}},
          {"name": "token", "in": "query", "schema": {"type": "string"}}
        ],
        "responses": {"101": {"description": "Switching to the WebSocket protocol"}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "404": {"$ref": "#/components/responses/NotFound"}, "426": {"description": "Not a WebSocket upgrade"}}}
    },
    "/api/v1/events": {"get": {"summary": "Stored events, oldest first, paged",
      "parameters": [
        {"name": "stream", "in": "query", "schema": {"type": "string"}},
        {"name": "kind", "in": "query", "schema": {"enum": ["rep", "form", "anomaly", "status"]}},
        {"name": "exercise", "in": "query", "schema": {"type": "string"}},
        {"name": "person", "in": "query", "schema": {"type": "integer"}},
        {"$ref": "#/components/parameters/From"}, {"$ref": "#/components/parameters/To"},
        {"name": "after", "in": "query", "schema": {"type": "integer"}, "description": "the previous page's next"},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}
      ],
      "responses": {"200": {"description": "A page", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventPage"}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "503": {"$ref": "#/components/responses/Unavailable"}}}},
    "/api/v1/sessions": {"get": {"summary": "People and their sessions: reps, form issues, anomalies, first and last time per stream, person and exercise",
      "parameters": [{"name": "stream", "in": "query", "schema": {"type": "string"}}, {"name": "exercise", "in": "query", "schema": {"type": "string"}}, {"$ref": "#/components/parameters/From"}, {"$ref": "#/components/parameters/To"}],
      "responses": {"200": {"description": "The sessions", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Sessions"}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "503": {"$ref": "#/components/responses/Unavailable"}}}},
    "/api/v1/exercises": {"get": {"summary": "Every exercise", "responses": {"200": {"description": "The exercises", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExerciseList"}}}}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
    "/api/v1/exercises/{name}": {
      "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
      "get": {"summary": "One exercise with its TOML definition", "responses": {"200": {"description": "The exercise", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Exercise"}}}}, "404": {"$ref": "#/components/responses/NotFound"}}},
      "put": {"summary": "Add or replace an exercise (TOML, docs/exercises.md); streams started afterwards use it",
        "requestBody": {"required": true, "content": {"application/toml": {"schema": {"type": "string"}}}},
        "responses": {"200": {"description": "Replaced", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Exercise"}}}}, "201": {"description": "Added", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Exercise"}}}}, "400": {"$ref": "#/components/responses/BadRequest"}, "401": {"$ref": "#/components/responses/Unauthorized"}, "415": {"description": "Not TOML"}, "422": {"$ref": "#/components/responses/Unprocessable"}}}
    }
  }
})json";

}  // namespace

const nlohmann::json& openapi_document() {
  static const nlohmann::json document = nlohmann::json::parse(kDocument);
  return document;
}

}  // namespace pose::service
