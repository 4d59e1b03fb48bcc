// Package contract checks the Flag API server against its OpenAPI 3.1
// document (flagserver.OpenAPIDocument, served at GET /v1/openapi.json).
//
// It is a module of its own so that the validator it uses
// (github.com/getkin/kin-openapi) stays out of the module graph of
// programs that import the SDK or flagserver. Its tests run the flagserver
// package's test suite with recordEnv set, which makes
// those tests record every HTTP exchange they make, then validate each
// recorded request and response against the document: a response the
// document does not allow, or a request it refuses that the server
// accepted, fails the test. The package has no API.
package contract
