// Generated from openapi.json by OpenAPITests: edit openapi.json, then run
// FLASHSALE_UPDATE_OPENAPI=1 swift test --filter OpenAPI

/// The OpenAPI 3.1 description of the buyer API, served at `GET /openapi.json` on the
/// admin listener: the repository's openapi.json, compiled in (the binary is static and
/// carries no resource files).
enum OpenAPIDocument {
    static let json = ##"""
{
  "openapi": "3.1.0",
  "info": {
    "title": "flashsale buyer API",
    "version": "1",
    "summary": "Book items of a flash sale over HTTP: `flashsale serve`.",
    "description": "The buyers' API of `flashsale serve`, on the same database and rules as the command line: every decision is the command line's, and a 2xx answer means the change is committed durably. A user sees and changes only their own bookings and requests: anyone else's is 404, exactly as if it did not exist.\n\nChecks run in this order: the size of the headers (431), a transfer coding other than `chunked` (501) and an HTTP/1.0 body without a length (411), the route and method (404, 405 with `Allow`), `Accept` (406), authentication (401), the body (413, 415, 400), then the decision. A request whose headers or body do not arrive within 10 seconds is 408, and its connection closes.\n\nAuthentication: `Authorization: Bearer <JWT>` (HS256, ES256 or RS256, whichever the server's key is; `exp` required, the user is `sub`). A server started with `--auth header` instead takes the user from a header that an authenticating gateway in front sets, named by `--user-header`.\n\nErrors are `{\"error\": {\"code\": ..., \"message\": ...}}`, the code from the command line's table. Bodies are at most 4096 bytes, `Content-Type: application/json` and not encoded (`Content-Encoding` other than `identity` is 415); a POST without a body is `{}`; unknown fields are ignored, but the endpoint's own field written otherwise (`Key`, in capitals or with `-` for `_`) is 400. Request headers are at most 16 KiB. Ids in paths are percent-decoded once and are then the whole id (`%2F` is part of the id).\n\nThis document is served at `GET /openapi.json` on the server's admin listener."
  },
  "servers": [
    {
      "url": "http://127.0.0.1:8080",
      "description": "`flashsale serve`'s default `--listen`"
    }
  ],
  "security": [
    {
      "bearer": []
    }
  ],
  "tags": [
    {
      "name": "bookings",
      "description": "Holds and bookings: `book`, `confirm`, `cancel`, `booking`, `bookings`."
    },
    {
      "name": "requests",
      "description": "The sale's durable queue: `submit`, `request`."
    },
    {
      "name": "sales",
      "description": "The public part of a sale."
    },
    {
      "name": "events",
      "description": "Live updates of the user's own bookings and requests."
    }
  ],
  "paths": {
    "/booking-service/book-item/{sale}": {
      "parameters": [
        {
          "$ref": "#/components/parameters/sale"
        }
      ],
      "post": {
        "operationId": "book",
        "tags": [
          "bookings"
        ],
        "summary": "Hold an item for the user",
        "description": "The command line's `book SALE USER`, with the client address and `User-Agent` as `--ip` and `--user-agent` (at most 1024 bytes, else 400). A hold lasts the sale's hold time; confirm it with PUT before `expires_at`. The same `key` again answers 200 with the same booking.",
        "requestBody": {
          "$ref": "#/components/requestBodies/Booking"
        },
        "responses": {
          "200": {
            "description": "The key was used before by this user: the same booking as the first time.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Booking"
                }
              }
            },
            "headers": {
              "Location": {
                "$ref": "#/components/headers/Location"
              }
            },
            "links": {
              "booking": {
                "$ref": "#/components/links/booking"
              },
              "confirm": {
                "$ref": "#/components/links/confirm"
              },
              "cancel": {
                "$ref": "#/components/links/cancel"
              }
            }
          },
          "201": {
            "description": "Held: the new booking.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Booking"
                }
              }
            },
            "headers": {
              "Location": {
                "$ref": "#/components/headers/Location"
              }
            },
            "links": {
              "booking": {
                "$ref": "#/components/links/booking"
              },
              "confirm": {
                "$ref": "#/components/links/confirm"
              },
              "cancel": {
                "$ref": "#/components/links/cancel"
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadInput"
          },
          "401": {
            "$ref": "#/components/responses/Unauthenticated"
          },
          "403": {
            "$ref": "#/components/responses/Blocked"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "405": {
            "$ref": "#/components/responses/MethodNotAllowed"
          },
          "406": {
            "$ref": "#/components/responses/NotAcceptable"
          },
          "408": {
            "$ref": "#/components/responses/RequestTimeout"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "411": {
            "$ref": "#/components/responses/LengthRequired"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "431": {
            "$ref": "#/components/responses/HeadersTooLarge"
          },
          "500": {
            "$ref": "#/components/responses/Internal"
          },
          "501": {
            "$ref": "#/components/responses/TransferCodingNotImplemented"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      },
      "get": {
        "operationId": "bookings",
        "tags": [
          "bookings"
        ],
        "summary": "The user's bookings in a sale",
        "description": "The command line's `bookings SALE --user USER`, a page at a time: the user's bookings in the sale, in any status, oldest first, at most `limit` of them (100 unless it says otherwise, at most 1000), from the one after `after`. When more follow, `Link` names the next page (RFC 8288, `rel=\"next\"`), as GitHub's lists do; the last page has no `Link`.",
        "responses": {
          "200": {
            "description": "A page of the user's bookings, oldest first.",
            "content": {
              "application/json": {
                "schema": {
                  "type": "array",
                  "items": {
                    "$ref": "#/components/schemas/Booking"
                  }
                }
              }
            },
            "headers": {
              "Link": {
                "$ref": "#/components/headers/Link"
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadInput"
          },
          "401": {
            "$ref": "#/components/responses/Unauthenticated"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "405": {
            "$ref": "#/components/responses/MethodNotAllowed"
          },
          "406": {
            "$ref": "#/components/responses/NotAcceptable"
          },
          "408": {
            "$ref": "#/components/responses/RequestTimeout"
          },
          "431": {
            "$ref": "#/components/responses/HeadersTooLarge"
          },
          "500": {
            "$ref": "#/components/responses/Internal"
          },
          "501": {
            "$ref": "#/components/responses/TransferCodingNotImplemented"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        },
        "parameters": [
          {
            "name": "after",
            "in": "query",
            "required": false,
            "description": "The id of a booking of the user's in the sale, as the last page's `Link` gives it: the page starts after it. One that is not the user's, well-formed or not, is 404; given twice, 400.",
            "schema": {
              "type": "string",
              "minLength": 1
            }
          },
          {
            "name": "limit",
            "in": "query",
            "required": false,
            "description": "Bookings a page holds at most; a whole number of decimal digits. Outside 1 to 1000, or given twice, it is 400.",
            "schema": {
              "type": "integer",
              "minimum": 1,
              "maximum": 1000,
              "default": 100
            }
          }
        ]
      }
    },
    "/booking-service/book-item/{sale}/{booking}": {
      "parameters": [
        {
          "$ref": "#/components/parameters/sale"
        },
        {
          "$ref": "#/components/parameters/booking"
        }
      ],
      "put": {
        "operationId": "confirm",
        "tags": [
          "bookings"
        ],
        "summary": "Confirm a hold",
        "description": "The command line's `confirm SALE BOOKING --user USER`. Already booked: 200, unchanged. A cancelled booking is 409 `conflict`; an expired one (swept, or past `expires_at`) 410 `hold_expired`.",
        "requestBody": {
          "$ref": "#/components/requestBodies/Confirm"
        },
        "responses": {
          "200": {
            "description": "Booked: the booking.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Booking"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadInput"
          },
          "401": {
            "$ref": "#/components/responses/Unauthenticated"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "405": {
            "$ref": "#/components/responses/MethodNotAllowed"
          },
          "406": {
            "$ref": "#/components/responses/NotAcceptable"
          },
          "408": {
            "$ref": "#/components/responses/RequestTimeout"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "410": {
            "$ref": "#/components/responses/HoldExpired"
          },
          "411": {
            "$ref": "#/components/responses/LengthRequired"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "431": {
            "$ref": "#/components/responses/HeadersTooLarge"
          },
          "500": {
            "$ref": "#/components/responses/Internal"
          },
          "501": {
            "$ref": "#/components/responses/TransferCodingNotImplemented"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      },
      "delete": {
        "operationId": "cancel",
        "tags": [
          "bookings"
        ],
        "summary": "Cancel a booking",
        "description": "The command line's `cancel SALE BOOKING --user USER`: the item goes back to the sale, and the booking stays, readable with status `cancelled`. Already cancelled or expired: 200, unchanged; a hold past its expiry answers 200 with status `expired` (it is expired on the spot). A confirmed booking is 409 `conflict`.",
        "requestBody": {
          "$ref": "#/components/requestBodies/Cancel"
        },
        "responses": {
          "200": {
            "description": "Cancelled (or expired): the booking.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Booking"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadInput"
          },
          "401": {
            "$ref": "#/components/responses/Unauthenticated"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "405": {
            "$ref": "#/components/responses/MethodNotAllowed"
          },
          "406": {
            "$ref": "#/components/responses/NotAcceptable"
          },
          "408": {
            "$ref": "#/components/responses/RequestTimeout"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "411": {
            "$ref": "#/components/responses/LengthRequired"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "431": {
            "$ref": "#/components/responses/HeadersTooLarge"
          },
          "500": {
            "$ref": "#/components/responses/Internal"
          },
          "501": {
            "$ref": "#/components/responses/TransferCodingNotImplemented"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      },
      "get": {
        "operationId": "booking",
        "tags": [
          "bookings"
        ],
        "summary": "One of the user's bookings",
        "description": "The command line's `booking SALE BOOKING`, for the user's own bookings only.",
        "responses": {
          "200": {
            "description": "The booking.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Booking"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadInput"
          },
          "401": {
            "$ref": "#/components/responses/Unauthenticated"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "405": {
            "$ref": "#/components/responses/MethodNotAllowed"
          },
          "406": {
            "$ref": "#/components/responses/NotAcceptable"
          },
          "408": {
            "$ref": "#/components/responses/RequestTimeout"
          },
          "431": {
            "$ref": "#/components/responses/HeadersTooLarge"
          },
          "500": {
            "$ref": "#/components/responses/Internal"
          },
          "501": {
            "$ref": "#/components/responses/TransferCodingNotImplemented"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/booking-service/requests/{id}": {
      "post": {
        "operationId": "submit",
        "tags": [
          "requests"
        ],
        "summary": "Queue a booking request",
        "description": "The command line's `submit SALE USER`: the request joins the sale's durable queue, and a worker (`flashsale process`) decides it in order. Follow it with GET on its `Location`, or on the event stream. The same `key` again answers 200 with the same request.\n\nThe path's segment is the sale's id here, the request's id in GET: OpenAPI allows one template per path, and names its parameter once.",
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "The sale's id.",
            "schema": {
              "$ref": "#/components/schemas/SaleID"
            }
          }
        ],
        "requestBody": {
          "$ref": "#/components/requestBodies/Booking"
        },
        "responses": {
          "200": {
            "description": "The key was used before by this user: the same request as the first time.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Request"
                }
              }
            },
            "headers": {
              "Location": {
                "$ref": "#/components/headers/Location"
              }
            },
            "links": {
              "request": {
                "$ref": "#/components/links/request"
              }
            }
          },
          "202": {
            "description": "Queued: the request, with its `position` in line.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Request"
                }
              }
            },
            "headers": {
              "Location": {
                "$ref": "#/components/headers/Location"
              }
            },
            "links": {
              "request": {
                "$ref": "#/components/links/request"
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadInput"
          },
          "401": {
            "$ref": "#/components/responses/Unauthenticated"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "405": {
            "$ref": "#/components/responses/MethodNotAllowed"
          },
          "406": {
            "$ref": "#/components/responses/NotAcceptable"
          },
          "408": {
            "$ref": "#/components/responses/RequestTimeout"
          },
          "409": {
            "$ref": "#/components/responses/Conflict"
          },
          "411": {
            "$ref": "#/components/responses/LengthRequired"
          },
          "413": {
            "$ref": "#/components/responses/ContentTooLarge"
          },
          "415": {
            "$ref": "#/components/responses/UnsupportedMediaType"
          },
          "431": {
            "$ref": "#/components/responses/HeadersTooLarge"
          },
          "500": {
            "$ref": "#/components/responses/Internal"
          },
          "501": {
            "$ref": "#/components/responses/TransferCodingNotImplemented"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      },
      "get": {
        "operationId": "request",
        "tags": [
          "requests"
        ],
        "summary": "One of the user's requests",
        "description": "The command line's `request ID`, for the user's own requests only.",
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "The request's id, as `Location` gives it. Any id that is not one of the user's requests, an integer or not, is 404.",
            "schema": {
              "type": "integer",
              "minimum": 1,
              "format": "int64"
            }
          }
        ],
        "responses": {
          "200": {
            "description": "The request.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Request"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthenticated"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "405": {
            "$ref": "#/components/responses/MethodNotAllowed"
          },
          "406": {
            "$ref": "#/components/responses/NotAcceptable"
          },
          "408": {
            "$ref": "#/components/responses/RequestTimeout"
          },
          "431": {
            "$ref": "#/components/responses/HeadersTooLarge"
          },
          "500": {
            "$ref": "#/components/responses/Internal"
          },
          "501": {
            "$ref": "#/components/responses/TransferCodingNotImplemented"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/booking-service/sales/{sale}": {
      "parameters": [
        {
          "$ref": "#/components/parameters/sale"
        }
      ],
      "get": {
        "operationId": "sale",
        "tags": [
          "sales"
        ],
        "summary": "A sale's public state",
        "description": "The public part of the command line's `status SALE`. Needs no credentials.",
        "security": [],
        "responses": {
          "200": {
            "description": "The sale.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/PublicSale"
                }
              }
            },
            "headers": {
              "Cache-Control": {
                "description": "Shared caches may keep it for a second.",
                "required": true,
                "schema": {
                  "type": "string",
                  "const": "public, max-age=1"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadInput"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "405": {
            "$ref": "#/components/responses/MethodNotAllowed"
          },
          "406": {
            "$ref": "#/components/responses/NotAcceptable"
          },
          "408": {
            "$ref": "#/components/responses/RequestTimeout"
          },
          "431": {
            "$ref": "#/components/responses/HeadersTooLarge"
          },
          "500": {
            "$ref": "#/components/responses/Internal"
          },
          "501": {
            "$ref": "#/components/responses/TransferCodingNotImplemented"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/booking-service/events": {
      "get": {
        "operationId": "events",
        "tags": [
          "events"
        ],
        "summary": "Live updates of the user's bookings and requests",
        "description": "Server-sent events: each change to one of the user's bookings or requests (held, booked, cancelled, expired, accepted, rejected), whichever process made it, within 100 ms of its commit. Each message is `id: <seq>` and `data: <Event as JSON>`. Without `Last-Event-ID` the stream carries only events committed after it opens; with it, every later event of the user's first, then live ones, each exactly once. An idle stream gets a comment line every 15 s. A stream ends, and its connection closes with it, when the client leaves, when the server stops, when the bearer token's `exp` passes (with 30 s of leeway), when the user opens a 17th stream (their oldest ends), or when the client has not read 10,000 events; the client reconnects with `Last-Event-ID` and misses nothing.",
        "parameters": [
          {
            "name": "Last-Event-ID",
            "in": "header",
            "required": false,
            "description": "Resume after this event's `seq`; not a non-negative integer, or past the log's last event: 400.",
            "schema": {
              "type": "string",
              "pattern": "^[0-9]{1,18}$"
            }
          }
        ],
        "responses": {
          "200": {
            "description": "The stream, until one of the ends above; its connection closes with it.",
            "headers": {
              "Cache-Control": {
                "required": true,
                "schema": {
                  "type": "string",
                  "const": "no-store"
                }
              },
              "Connection": {
                "required": true,
                "schema": {
                  "type": "string",
                  "const": "close"
                }
              }
            },
            "content": {
              "text/event-stream": {
                "schema": {
                  "type": "object",
                  "description": "One message of the stream (before OpenAPI 3.2's `itemSchema`, a `text/event-stream` schema describes each event): `id` is the event's `seq`, to resume with as `Last-Event-ID`; `data` is an Event as JSON. Comment lines (`: following` when the stream opens, `: idle` every 15 s) carry no event.",
                  "required": [
                    "id",
                    "data"
                  ],
                  "properties": {
                    "id": {
                      "type": "string",
                      "pattern": "^[0-9]+$"
                    },
                    "data": {
                      "type": "string",
                      "contentMediaType": "application/json",
                      "contentSchema": {
                        "$ref": "#/components/schemas/Event"
                      }
                    }
                  }
                },
                "example": ": following\n\nid: 2\ndata: {\"seq\":2,\"at\":\"2026-12-01T19:31:00.351Z\",\"sale\":\"s1\",\"kind\":\"held\",\"booking\":\"bk_7n4gOzADtPBIPb8EZeVqx_\",\"user\":\"u1\"}\n\n"
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadInput"
          },
          "401": {
            "$ref": "#/components/responses/Unauthenticated"
          },
          "405": {
            "$ref": "#/components/responses/MethodNotAllowed"
          },
          "406": {
            "$ref": "#/components/responses/NotAcceptable"
          },
          "408": {
            "$ref": "#/components/responses/RequestTimeout"
          },
          "431": {
            "$ref": "#/components/responses/HeadersTooLarge"
          },
          "500": {
            "$ref": "#/components/responses/Internal"
          },
          "501": {
            "$ref": "#/components/responses/TransferCodingNotImplemented"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    }
  },
  "components": {
    "securitySchemes": {
      "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A JWT signed with the server's key (HS256, ES256 or RS256; the key allows only its own algorithm, never `none`); `exp` required, `nbf` honoured, 30 s leeway; `iss` and `aud` checked when the server is given them. The user is `sub`."
      }
    },
    "parameters": {
      "sale": {
        "name": "sale",
        "in": "path",
        "required": true,
        "description": "The sale's id; one that is not a sale id is 400.",
        "schema": {
          "$ref": "#/components/schemas/SaleID"
        }
      },
      "booking": {
        "name": "booking",
        "in": "path",
        "required": true,
        "description": "The booking's id, as `Location` gives it. Any id that is not one of the user's bookings, well-formed or not, is 404.",
        "schema": {
          "type": "string",
          "minLength": 1
        }
      }
    },
    "requestBodies": {
      "Booking": {
        "required": false,
        "description": "Optional: no body is `{}`.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/BookingRequest"
            },
            "example": {
              "key": "req-1"
            }
          }
        }
      },
      "Confirm": {
        "required": true,
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Confirm"
            },
            "example": {
              "status": "booked"
            }
          }
        }
      },
      "Cancel": {
        "required": false,
        "description": "Optional: no body is `{}`.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Cancel"
            },
            "example": {
              "status": "deleted"
            }
          }
        }
      }
    },
    "headers": {
      "Location": {
        "description": "The path of the booking or request.",
        "required": true,
        "schema": {
          "type": "string"
        }
      },
      "Link": {
        "description": "The next page: `</booking-service/book-item/{sale}?after=BOOKING&limit=N>; rel=\"next\"`. Absent on the last page.",
        "required": false,
        "schema": {
          "type": "string"
        }
      },
      "WWW-Authenticate": {
        "description": "The challenge: `Bearer`.",
        "required": true,
        "schema": {
          "type": "string"
        }
      },
      "Allow": {
        "description": "The methods this path takes, comma-separated.",
        "required": true,
        "schema": {
          "type": "string"
        }
      },
      "Retry-After": {
        "description": "Seconds to wait before a retry.",
        "required": true,
        "schema": {
          "type": "string",
          "const": "1"
        }
      }
    },
    "links": {
      "booking": {
        "operationId": "booking",
        "parameters": {
          "sale": "$request.path.sale",
          "booking": "$response.body#/id"
        },
        "description": "Read it again."
      },
      "confirm": {
        "operationId": "confirm",
        "parameters": {
          "sale": "$request.path.sale",
          "booking": "$response.body#/id"
        },
        "description": "Confirm the hold."
      },
      "cancel": {
        "operationId": "cancel",
        "parameters": {
          "sale": "$request.path.sale",
          "booking": "$response.body#/id"
        },
        "description": "Cancel it."
      },
      "request": {
        "operationId": "request",
        "parameters": {
          "id": "$response.body#/id"
        },
        "description": "Follow it until it is decided."
      }
    },
    "responses": {
      "BadInput": {
        "description": "`bad_input`: malformed JSON, a wrong field type, an unknown `status` value, an invalid id or header.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            },
            "example": {
              "error": {
                "code": "bad_input",
                "message": "the body is not a JSON object"
              }
            }
          }
        }
      },
      "Unauthenticated": {
        "description": "`unauthenticated`: no or bad credentials.",
        "headers": {
          "WWW-Authenticate": {
            "$ref": "#/components/headers/WWW-Authenticate"
          }
        },
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Blocked": {
        "description": "`blocked`: the user, address or agent is blocked, or the address is at the sale's per-IP limit.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "NotFound": {
        "description": "`not_found`: no such sale, booking or request, or not this user's.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "MethodNotAllowed": {
        "description": "`bad_input`: another method on this path than those it takes, which `Allow` lists.",
        "headers": {
          "Allow": {
            "$ref": "#/components/headers/Allow"
          }
        },
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "NotAcceptable": {
        "description": "`bad_input`: `Accept` names no type this operation answers with.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "RequestTimeout": {
        "description": "`bad_input`: the request's headers did not arrive whole within 10 seconds of its first byte, or its body within 10 seconds of its headers (once the server is stopping, both within 9 seconds of the stop signal). Nothing was done, and the request may be sent again; the connection closes after this answer.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Conflict": {
        "description": "`sold_out`, `user_limit` or `not_open`: the sale declined; `conflict`: the key was used by another user, or the booking's status forbids the change.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            },
            "example": {
              "error": {
                "code": "sold_out",
                "message": "sale s1 is sold out"
              }
            }
          }
        }
      },
      "HoldExpired": {
        "description": "`hold_expired`: confirm at or after `expires_at`.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "LengthRequired": {
        "description": "`bad_input`: an HTTP/1.0 POST or PUT without `Content-Length` (which HTTP/1.0 asks of them), or DELETE with a `Content-Type` and none, whose body cannot be read; the connection closes after the answer.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "ContentTooLarge": {
        "description": "`bad_input`: the body is over 4096 bytes.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "UnsupportedMediaType": {
        "description": "`bad_input`: a body that is not `Content-Type: application/json` in UTF-8 (a `charset` other than `utf-8`), or that is encoded.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "HeadersTooLarge": {
        "description": "`bad_input`: the request's headers are over 16 KiB.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Internal": {
        "description": "`internal` or `invariant`: a bug.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Unavailable": {
        "description": "`busy`: the database is locked past the busy timeout (or, on PostgreSQL, the server canceled a statement that ran past it); `io`: disk trouble. Nothing happened: retry.",
        "headers": {
          "Retry-After": {
            "$ref": "#/components/headers/Retry-After"
          }
        },
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "TransferCodingNotImplemented": {
        "description": "`bad_input`: the request has a transfer coding other than `chunked` alone, which the server does not read; the connection is closed.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      }
    },
    "schemas": {
      "SaleID": {
        "type": "string",
        "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        "description": "1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit.",
        "example": "s1"
      },
      "BookingRequest": {
        "type": "object",
        "description": "Unknown fields are ignored.",
        "properties": {
          "key": {
            "type": [
              "string",
              "null"
            ],
            "maxLength": 256,
            "pattern": "^[^\\u0000]*$",
            "description": "An idempotency key, at most 256 bytes of UTF-8 without NUL: the same key again answers with the first booking (or request). `\"\"` or `null` is no key."
          }
        }
      },
      "Confirm": {
        "type": "object",
        "required": [
          "status"
        ],
        "description": "Unknown fields are ignored.",
        "properties": {
          "status": {
            "const": "booked"
          }
        }
      },
      "Cancel": {
        "type": "object",
        "description": "Unknown fields are ignored.",
        "properties": {
          "status": {
            "enum": [
              "deleted",
              null
            ]
          }
        }
      },
      "Booking": {
        "type": "object",
        "additionalProperties": false,
        "description": "The command line's `--json` booking.",
        "required": [
          "id",
          "sale",
          "user",
          "status",
          "created_at",
          "expires_at",
          "confirmed_at",
          "cancelled_at",
          "expired_at",
          "ip",
          "user_agent",
          "key"
        ],
        "properties": {
          "id": {
            "type": "string",
            "example": "bk_7n4gOzADtPBIPb8EZeVqx_"
          },
          "sale": {
            "$ref": "#/components/schemas/SaleID"
          },
          "user": {
            "type": "string"
          },
          "status": {
            "type": "string",
            "enum": [
              "held",
              "booked",
              "cancelled",
              "expired"
            ]
          },
          "created_at": {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 in UTC, always with milliseconds: `2026-11-24T15:00:00.000Z`."
          },
          "expires_at": {
            "type": "string",
            "format": "date-time",
            "description": "When a hold lapses unless confirmed."
          },
          "confirmed_at": {
            "type": [
              "string",
              "null"
            ],
            "format": "date-time",
            "description": "RFC 3339 in UTC with milliseconds, or null while it has not happened."
          },
          "cancelled_at": {
            "type": [
              "string",
              "null"
            ],
            "format": "date-time",
            "description": "RFC 3339 in UTC with milliseconds, or null while it has not happened."
          },
          "expired_at": {
            "type": [
              "string",
              "null"
            ],
            "format": "date-time",
            "description": "RFC 3339 in UTC with milliseconds, or null while it has not happened."
          },
          "ip": {
            "type": [
              "string",
              "null"
            ],
            "description": "The client address it was made from, if known."
          },
          "user_agent": {
            "type": [
              "string",
              "null"
            ]
          },
          "key": {
            "type": [
              "string",
              "null"
            ],
            "description": "Its idempotency key, if it was given one."
          }
        },
        "example": {
          "id": "bk_7n4gOzADtPBIPb8EZeVqx_",
          "sale": "s1",
          "user": "u1",
          "status": "held",
          "created_at": "2026-12-01T19:31:00.351Z",
          "expires_at": "2026-12-01T19:36:00.351Z",
          "confirmed_at": null,
          "cancelled_at": null,
          "expired_at": null,
          "ip": "203.0.113.7",
          "user_agent": "Mozilla/5.0",
          "key": "req-1"
        }
      },
      "Request": {
        "type": "object",
        "additionalProperties": false,
        "description": "The command line's `--json` request: a booking attempt in the sale's queue.",
        "required": [
          "id",
          "sale",
          "user",
          "status",
          "reason",
          "booking",
          "submitted_at",
          "decided_at",
          "position"
        ],
        "properties": {
          "id": {
            "type": "integer",
            "format": "int64",
            "minimum": 1
          },
          "sale": {
            "$ref": "#/components/schemas/SaleID"
          },
          "user": {
            "type": "string"
          },
          "status": {
            "type": "string",
            "enum": [
              "queued",
              "accepted",
              "rejected"
            ]
          },
          "reason": {
            "type": [
              "string",
              "null"
            ],
            "enum": [
              "sold_out",
              "user_limit",
              "not_open",
              "blocked",
              "conflict",
              null
            ],
            "description": "Why it was rejected; null otherwise."
          },
          "booking": {
            "type": [
              "string",
              "null"
            ],
            "description": "The booking it was accepted with."
          },
          "submitted_at": {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 in UTC, always with milliseconds: `2026-11-24T15:00:00.000Z`."
          },
          "decided_at": {
            "type": [
              "string",
              "null"
            ],
            "format": "date-time",
            "description": "RFC 3339 in UTC with milliseconds, or null while it has not happened."
          },
          "position": {
            "type": [
              "integer",
              "null"
            ],
            "minimum": 1,
            "description": "Its place in line while queued, from 1; null once decided."
          }
        },
        "example": {
          "id": 1,
          "sale": "s1",
          "user": "u1",
          "status": "queued",
          "reason": null,
          "booking": null,
          "submitted_at": "2026-12-01T19:31:00.381Z",
          "decided_at": null,
          "position": 1
        }
      },
      "PublicSale": {
        "type": "object",
        "additionalProperties": false,
        "required": [
          "id",
          "name",
          "state",
          "available",
          "starts_at",
          "ends_at"
        ],
        "properties": {
          "id": {
            "$ref": "#/components/schemas/SaleID"
          },
          "name": {
            "type": "string"
          },
          "state": {
            "type": "string",
            "enum": [
              "scheduled",
              "open",
              "paused",
              "ended",
              "closed"
            ]
          },
          "available": {
            "type": "integer",
            "minimum": 0,
            "description": "Items neither held nor booked."
          },
          "starts_at": {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 in UTC, always with milliseconds: `2026-11-24T15:00:00.000Z`."
          },
          "ends_at": {
            "type": [
              "string",
              "null"
            ],
            "format": "date-time",
            "description": "RFC 3339 in UTC with milliseconds, or null for no end."
          }
        },
        "example": {
          "id": "s1",
          "name": "Winter drop",
          "state": "open",
          "available": 9,
          "starts_at": "2026-12-01T19:30:59.280Z",
          "ends_at": null
        }
      },
      "Event": {
        "type": "object",
        "additionalProperties": false,
        "description": "One `data:` line of the event stream: the `events` command's JSON object.",
        "required": [
          "seq",
          "at",
          "sale",
          "kind"
        ],
        "properties": {
          "seq": {
            "type": "integer",
            "format": "int64",
            "minimum": 1,
            "description": "Also the message's `id`."
          },
          "at": {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 in UTC, always with milliseconds: `2026-11-24T15:00:00.000Z`."
          },
          "sale": {
            "$ref": "#/components/schemas/SaleID"
          },
          "kind": {
            "type": "string",
            "enum": [
              "held",
              "booked",
              "cancelled",
              "expired",
              "accepted",
              "rejected"
            ]
          },
          "booking": {
            "type": "string"
          },
          "user": {
            "type": "string"
          },
          "request": {
            "type": "integer",
            "format": "int64",
            "minimum": 1
          },
          "detail": {
            "type": "string",
            "description": "For `rejected`, the reason; for a change of a booking, what made it (`confirm`, `cancel`, `sweep`, `cancel --force`, ...)."
          }
        }
      },
      "Error": {
        "type": "object",
        "additionalProperties": false,
        "required": [
          "error"
        ],
        "properties": {
          "error": {
            "type": "object",
            "additionalProperties": false,
            "required": [
              "code",
              "message"
            ],
            "properties": {
              "code": {
                "type": "string",
                "enum": [
                  "bad_input",
                  "unauthenticated",
                  "blocked",
                  "not_found",
                  "sold_out",
                  "user_limit",
                  "not_open",
                  "conflict",
                  "hold_expired",
                  "busy",
                  "io",
                  "internal",
                  "invariant"
                ]
              },
              "message": {
                "type": "string",
                "description": "One line for people; match on `code`."
              }
            }
          }
        },
        "example": {
          "error": {
            "code": "not_found",
            "message": "no sale s2"
          }
        }
      }
    }
  }
}

"""##
}
