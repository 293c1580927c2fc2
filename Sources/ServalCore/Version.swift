/// Serval's release version, reported by `GET /v2`, gRPC `ServerMetadata` and `serval --version`.
public let servalVersion = "0.2.0"
