/// The OpenAPI 3.1 description of the buyer API, served at `GET /openapi.json`.
enum OpenAPIDocument {
    static let json = #"{"openapi": "3.1.0", "info": {"title": "flashsale", "version": "0"}, "paths": {}}"#
}
