public import AsyncHTTPClient
import ServalArtifacts
import Foundation
public import NIOCore
public import NIOHTTP1
import NIOFoundationCompat
public import ServalAPI
public import ServalCore

/// A client for Serval's REST API and the SageMaker runtime route, used by the CLI and the tests.
public struct ServalClient: Sendable {
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    public let baseURL: String
    let http: HTTPClient
    let timeout: TimeAmount
    /// `ACCESS_KEY_ID:SECRET`, sent as `Authorization: Bearer ...` on every request; `nil` sends none.
    let apiKey: String?

    /// Creates a client; with `apiKey` (`ACCESS_KEY_ID:SECRET`) every request carries it as a bearer token.
    public init(
        baseURL: String, apiKey: String? = nil, httpClient: HTTPClient = .shared, timeout: TimeAmount = .seconds(120)
    ) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.apiKey = apiKey
        self.http = httpClient
        self.timeout = timeout
    }

    /// A request to `path` with the bearer token when there is one.
    func makeRequest(_ method: HTTPMethod, _ path: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        return request
    }

    /// A raw HTTP answer.
    public struct RawResponse: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: ByteBuffer

        /// The first value of a header, by case-insensitive name.
        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }

        /// The body as UTF-8 text.
        public var text: String { String(buffer: body) }
    }

    /// Sends a request and returns whatever comes back.
    public func send(
        _ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: ByteBuffer? = nil
    ) async throws -> RawResponse {
        try await send(method, path, headers: headers, streaming: body.map { .bytes($0) })
    }

    private func send(
        _ method: HTTPMethod, _ path: String, headers: [(String, String)], streaming body: HTTPClientRequest.Body?
    ) async throws -> RawResponse {
        var request = makeRequest(method, path)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = body
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: timeout)
        } catch {
            throw ServalError(.serviceUnavailable, "Cannot reach Serval at \(baseURL) (\(error)); is `serval serve` running? Use --server or SERVAL_URL to point elsewhere.")
        }
        let data = try await response.body.collect(upTo: 1 << 30)
        return RawResponse(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: data)
    }

    // MARK: Models

    /// Uploads a package (a folder, `.tar` or `.tar.gz`) as a new model.
    public func createModel(name: String, package path: String) async throws -> ModelDescription {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ServalError(.validationError, "\(path) does not exist.")
        }
        var archive = path
        var temporary: String?
        if isDirectory.boolValue {
            temporary = NSTemporaryDirectory() + "serval-upload-\(UUID().uuidString).tar"
            try TarWriter.archive(folder: path, to: temporary!)
            archive = temporary!
        }
        defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
        // Stream the archive in 1 MiB chunks: packages can be gigabytes.
        guard let file = FileHandle(forReadingAtPath: archive),
            let size = (try? FileManager.default.attributesOfItem(atPath: archive))?[.size] as? Int64
        else { throw ServalError(.validationError, "Cannot read \(archive).") }
        defer { try? file.close() }
        let chunks = AsyncStream<ByteBuffer> {
            guard let data = try? file.read(upToCount: 1 << 20), !data.isEmpty else { return nil }
            return ByteBuffer(data: data)
        }
        let query = name.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? name
        return try await decode(
            send(
                .POST, "/models?name=\(query)", headers: [("Content-Type", "application/x-tar")],
                streaming: .stream(chunks, length: .known(size))))
    }

    /// The named model.
    public func model(_ name: String) async throws -> ModelDescription {
        try await decode(send(.GET, "/models/\(escape(name))"))
    }

    /// Every model.
    public func models() async throws -> [ModelDescription] {
        try await decode(send(.GET, "/models"), as: ModelList.self).models
    }

    /// Deletes a model.
    public func deleteModel(_ name: String) async throws {
        try check(await send(.DELETE, "/models/\(escape(name))"))
    }

    // MARK: Endpoint configs

    /// Creates an endpoint config.
    public func createEndpointConfig(_ config: EndpointConfigDescription) async throws -> EndpointConfigDescription {
        try await decode(send(.POST, "/endpoint-configs", json: config))
    }

    /// Deletes an endpoint config.
    public func deleteEndpointConfig(_ name: String) async throws {
        try check(await send(.DELETE, "/endpoint-configs/\(escape(name))"))
    }

    // MARK: Endpoints

    /// Creates an endpoint; it starts `Creating`.
    public func createEndpoint(name: String, config: String) async throws -> EndpointDescription {
        try await decode(send(.POST, "/endpoints", json: CreateEndpointRequest(name: name, config: config)))
    }

    /// The named endpoint.
    public func endpoint(_ name: String) async throws -> EndpointDescription {
        try await decode(send(.GET, "/endpoints/\(escape(name))"))
    }

    /// Every endpoint, or those in `status`, whose name contains `nameContains` and whose config serves `model`.
    public func endpoints(status: String? = nil, nameContains: String? = nil, model: String? = nil) async throws -> [EndpointDescription] {
        let filters = [("status", status), ("nameContains", nameContains), ("model", model)].compactMap { key, value in
            value.map { "\(key)=\(queryEscape($0))" }
        }
        let path = "/endpoints" + (filters.isEmpty ? "" : "?" + filters.joined(separator: "&"))
        return try await decode(send(.GET, path), as: EndpointList.self).endpoints
    }

    /// Starts deleting an endpoint.
    public func deleteEndpoint(_ name: String) async throws -> EndpointDescription {
        try await decode(send(.DELETE, "/endpoints/\(escape(name))"))
    }

    /// Polls until the endpoint leaves `Creating`/`Updating`, or `timeout` passes.
    public func waitForEndpoint(_ name: String, timeout: Duration = .seconds(900)) async throws -> EndpointDescription {
        let deadline = ContinuousClock.now + timeout
        var delay = Duration.milliseconds(50)
        while true {
            let endpoint = try await endpoint(name)
            if !["Creating", "Updating", "SystemUpdating", "RollingBack"].contains(endpoint.status) { return endpoint }
            guard ContinuousClock.now < deadline else {
                throw ServalError(.serviceUnavailable, "Endpoint \"\(name)\" is still \(endpoint.status) after \(timeout).")
            }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .milliseconds(500))
        }
    }

    /// Polls until the endpoint no longer exists.
    public func waitForEndpointDeleted(_ name: String, timeout: Duration = .seconds(120)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await send(.GET, "/endpoints/\(escape(name))").status == 404 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ServalError(.serviceUnavailable, "Endpoint \"\(name)\" still exists after \(timeout).")
    }

    /// `POST /endpoints/{name}/invocations`; returns the raw answer, errors included.
    public func invoke(
        _ name: String, body: ByteBuffer, contentType: String? = "application/json", accept: String? = nil,
        headers extra: [(String, String)] = []
    ) async throws -> RawResponse {
        var headers = extra
        if let contentType { headers.append(("Content-Type", contentType)) }
        if let accept { headers.append(("Accept", accept)) }
        return try await send(.POST, "/endpoints/\(escape(name))/invocations", headers: headers, body: body)
    }

    // MARK: Helpers

    func send(_ method: HTTPMethod, _ path: String, json: some Encodable) async throws -> RawResponse {
        try await send(method, path, headers: [("Content-Type", "application/json")], body: ByteBuffer(data: try JSONEncoder().encode(json)))
    }

    func decode<T: Decodable>(_ response: RawResponse, as type: T.Type = T.self) throws -> T {
        try check(response)
        do {
            return try JSONDecoder().decode(T.self, from: response.body)
        } catch {
            throw ServalError(.internalFailure, "Serval answered with JSON this client does not understand: \(error)")
        }
    }

    func check(_ response: RawResponse) throws {
        guard (200..<300).contains(response.status) else { throw Self.error(from: response) }
    }

    /// The ``ServalError`` an error response carries.
    public static func error(from response: RawResponse) -> ServalError {
        if let body = try? JSONDecoder().decode(ErrorBody.self, from: response.body) {
            return ServalError(ServalError.Code(rawValue: body.code) ?? .internalFailure, body.message)
        }
        return ServalError(.internalFailure, "HTTP \(response.status): \(response.text)")
    }

    func queryEscape(_ value: String) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
    }

    func escape(_ name: String) -> String {
        name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? name
    }
}
