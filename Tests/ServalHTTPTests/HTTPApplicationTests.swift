import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import ServalArtifacts
import ServalAuth
import Testing

@testable import ServalHTTP

/// The HTTP application as `serval serve` builds it, driven in process: every route registered with its access
/// action and error shape, deny by default for routes nobody registered, and model uploads.
@Suite struct HTTPApplicationTests {
    /// SageMaker's code for a request without credentials.
    static let missingToken = "MissingAuthenticationTokenException"

    /// The refusal `response` should be, in `shape`: 401 without credentials, 403 for a role without the right.
    static func expectRefusal(
        _ response: TestResponse, status: HTTPResponse.Status, shape: ErrorShape, awsCode: String?, _ route: String
    ) {
        #expect(response.status == status, "\(route)")
        let body = response.json
        switch shape {
        case .rest:
            #expect(body["code"] as? String == (status == .unauthorized ? "Unauthenticated" : "AccessDenied"), "\(route)")
            #expect(body["message"] is String, "\(route)")
            if status == .unauthorized { #expect(response.headers[.wwwAuthenticate] == "Bearer realm=\"serval\"", "\(route)") }
        case .sageMakerRuntime:
            let code = response.headers[HTTPField.Name("x-amzn-ErrorType")!]
            #expect(code != nil && (awsCode == nil || code == awsCode), "\(route)")
            #expect(body["message"] is String, "\(route)")
        case .sageMakerJSON:
            #expect(response.headers[.contentType] == "application/x-amz-json-1.1", "\(route)")
            let code = body["__type"] as? String
            #expect(code != nil && (awsCode == nil || code == awsCode), "\(route)")
        case .openInference:
            #expect(body["error"] is String && body.count == 1, "\(route)")
        }
    }

    @Test("every registered route but the open ones is refused without a key, in its protocol's shape")
    func everyRouteNeedsAKey() async throws {
        let fixture = try await HTTPApplicationFixture(authentication: true)
        let routes = fixture.builder.routes().registered
        #expect(routes.count > 40)
        try await fixture.test { client in
            for route in routes {
                let name = "\(route.method) \(route.path)"
                let response = try await client.execute(uri: route.example, method: route.method)
                if case .open = route.permission {
                    #expect(response.status == .ok, "\(name)")
                } else {
                    Self.expectRefusal(response, status: .unauthorized, shape: route.shape, awsCode: Self.missingToken, name)
                }
                let wrong = try await client.execute(
                    uri: route.example, method: route.method, headers: [.authorization: "Bearer SKAAAAAAAAAAAAAAAAAA:nope"])
                if case .open = route.permission { continue }
                Self.expectRefusal(wrong, status: .unauthorized, shape: route.shape, awsCode: nil, name)
            }
        }
    }

    @Test("each route needs its action: a role without it is refused (403, the route's shape), a role with it is served")
    func rolesPerRoute() async throws {
        let fixture = try await HTTPApplicationFixture(authentication: true)
        let routes = fixture.builder.routes().registered
        try await fixture.test { client in
            for route in routes {
                guard case .requires(let action) = route.permission else { continue }
                for role in AccessKeyRole.allCases {
                    let name = "\(route.method) \(route.path) as \(role)"
                    let response = try await client.execute(
                        uri: route.example, method: route.method, headers: fixture.authorization(role))
                    if role.permits(action) {
                        #expect(response.status != .unauthorized && response.status != .forbidden, "\(name)")
                    } else {
                        let denied = AccessDenied(accessKeyID: "", role: role, action: action)
                        Self.expectRefusal(response, status: .forbidden, shape: route.shape, awsCode: denied.sageMakerError.code, name)
                    }
                }
            }
        }
    }

    @Test("the actions routes are registered with: the runtime invokes, async results are read, resources are described or managed, health is open")
    func registeredActions() async throws {
        let fixture = try await HTTPApplicationFixture(authentication: false)
        defer { try? FileManager.default.removeItem(atPath: fixture.folder) }
        let describe = AccessAction.describeResources
        var expected: [String: AccessAction?] = [
            "GET /ping": nil, "GET /v2": nil, "GET /v2/health/live": nil, "GET /v2/health/ready": nil,
            "GET /metrics": describe, "GET /openapi.json": .invoke,
            "POST /endpoints/{name}/invocations": .invoke, "POST /endpoints/{name}/async-invocations": .invoke,
            "GET /endpoints/{name}/async-invocations": .readInvocationResults,
            "GET /endpoints/{name}/async-invocations/{id}": .readInvocationResults,
            "GET /endpoints/{name}/async-invocations/{id}/result": .readInvocationResults,
            "DELETE /endpoints/{name}/async-invocations/{id}": .invoke,
            "POST /transform-jobs": .manageTransformJobs, "GET /transform-jobs": describe,
            "GET /transform-jobs/{name}": describe, "POST /transform-jobs/{name}/stop": .manageTransformJobs,
            "GET /endpoints/{name}/logs": describe, "GET /transform-jobs/{name}/logs": describe,
            "POST /models": .manageModels, "GET /models": describe, "GET /models/{name}": describe,
            "DELETE /models/{name}": .manageModels,
            "POST /endpoint-configs": .manageEndpointConfigs, "GET /endpoint-configs": describe,
            "GET /endpoint-configs/{name}": describe, "DELETE /endpoint-configs/{name}": .manageEndpointConfigs,
            "POST /endpoints": .manageEndpoints, "GET /endpoints": describe, "GET /endpoints/{name}": describe,
            "DELETE /endpoints/{name}": .manageEndpoints,
            "POST /access-keys": .manageAccessKeys, "GET /access-keys": .manageAccessKeys,
            "DELETE /access-keys/{id}": .manageAccessKeys,
            "GET /v2/models/stats": describe, "POST /v2/repository/index": describe,
            "POST /v2/repository/models/{model}/load": .manageEndpoints,
            "POST /v2/repository/models/{model}/unload": .manageEndpoints,
        ]
        for prefix in ["/v2/models/{model}", "/v2/models/{model}/versions/{version}"] {
            for (method, suffix) in [("GET", ""), ("GET", "/ready"), ("GET", "/config"), ("POST", "/infer")] {
                expected["\(method) \(prefix)\(suffix)"] = .invoke
            }
            expected["GET \(prefix)/stats"] = describe
        }
        var registered: [String: AccessAction?] = [:]
        for route in fixture.builder.routes().registered {
            let name = "\(route.method) \(route.path)"
            #expect(registered[name] == nil, "\(name) is registered twice")
            switch route.permission {
            case .open: registered[name] = .some(nil)
            case .requires(let action): registered[name] = action
            case .decided: #expect(name == "POST /" && route.shape == .sageMakerJSON)
            }
            let shape: ErrorShape =
                route.path.hasPrefix("/v2") ? .openInference
                : name == "POST /" ? .sageMakerJSON
                : ["POST /endpoints/{name}/invocations", "POST /endpoints/{name}/async-invocations"].contains(name)
                    ? .sageMakerRuntime : .rest
            #expect(route.shape == shape, "\(name)")
        }
        #expect(registered.count == expected.count)
        for (name, action) in expected { #expect(registered[name] == action, "\(name)") }
    }

    @Test("the control plane's POST / needs what its X-Amz-Target operation does")
    func controlPlaneByTarget() async throws {
        let fixture = try await HTTPApplicationFixture(authentication: true)
        let cases: [(String?, AccessAction)] = [
            ("SageMaker.ListEndpoints", .describeResources), ("SageMaker.DescribeModel", .describeResources),
            ("SageMaker.CreateModel", .manageModels), ("SageMaker.DeleteModel", .manageModels),
            ("SageMaker.CreateEndpointConfig", .manageEndpointConfigs), ("SageMaker.CreateEndpoint", .manageEndpoints),
            ("SageMaker.UpdateEndpointWeightsAndCapacities", .manageEndpoints),
            ("SageMaker.StopTransformJob", .manageTransformJobs), ("SageMaker.AddTags", .manageTags),
            ("SageMaker.ListTags", .describeResources), ("SageMaker.CreateTrainingJob", .manageAccessKeys),
            ("SageMaker.Frobnicate", .describeResources), ("Logs_20140328.GetLogEvents", .describeResources),
            ("Logs_20140328.PutLogEvents", .describeResources), (nil, .describeResources),
        ]
        try await fixture.test { client in
            for (target, action) in cases {
                #expect(SageMakerControlRoutes.action(target: target) == action, "\(target ?? "none")")
                for role in AccessKeyRole.allCases {
                    var headers = fixture.authorization(role)
                    headers[.contentType] = "application/x-amz-json-1.1"
                    if let target { headers[HTTPField.Name("X-Amz-Target")!] = target }
                    let response = try await client.execute(
                        uri: "/", method: .post, headers: headers, body: ByteBuffer(string: "{}"))
                    let name = "\(target ?? "none") as \(role)"
                    if role.permits(action) {
                        #expect(response.status != .forbidden, "\(name)")
                    } else {
                        let denied = AccessDenied(accessKeyID: "", role: role, action: action)
                        Self.expectRefusal(response, status: .forbidden, shape: .sageMakerJSON, awsCode: denied.sageMakerError.code, name)
                    }
                }
            }
        }
    }

    @Test("a route nobody registered is refused like a known one: a deployer to read, an admin to change, before its 404")
    func unknownRoutes() async throws {
        let fixture = try await HTTPApplicationFixture(authentication: true)
        try await fixture.test { client in
            for (method, path, shape) in [
                (HTTPRequest.Method.get, "/nothing/here", ErrorShape.rest), (.post, "/nothing/here", .rest),
                (.get, "/v2/nothing", .openInference), (.put, "/models/m", .rest), (.get, "/", .rest),
            ] {
                let action = Permission.unmatched(method)
                let name = "\(method) \(path)"
                Self.expectRefusal(
                    try await client.execute(uri: path, method: method), status: .unauthorized, shape: shape,
                    awsCode: Self.missingToken, name)
                for role in AccessKeyRole.allCases {
                    let response = try await client.execute(uri: path, method: method, headers: fixture.authorization(role))
                    if role.permits(action) {
                        #expect(response.status == .notFound, "\(name) as \(role)")
                        if shape == .openInference { #expect(response.json["error"] is String, "\(name)") }
                    } else {
                        let denied = AccessDenied(accessKeyID: "", role: role, action: action)
                        Self.expectRefusal(response, status: .forbidden, shape: shape, awsCode: denied.sageMakerError.code, "\(name) as \(role)")
                    }
                }
            }
        }
    }

    @Test("without authentication every route is served and an unknown one is a 404 in its protocol's shape")
    func authenticationOff() async throws {
        let fixture = try await HTTPApplicationFixture(authentication: false)
        try await fixture.test { client in
            #expect(try await client.execute(uri: "/ping", method: .get).status == .ok)
            let models = try await client.execute(uri: "/models", method: .get)
            #expect(models.status == .ok && models.json["models"] is [Any])
            let unknown = try await client.execute(uri: "/nothing", method: .get)
            #expect(unknown.status == .notFound && unknown.json["code"] as? String == "NotFound")
            let oip = try await client.execute(uri: "/v2/models/none/ready", method: .get)
            #expect(oip.status == .notFound && oip.json["error"] is String)
            let runtime = try await client.execute(uri: "/endpoints/none/invocations", method: .post, body: ByteBuffer(string: "[]"))
            #expect(runtime.status == .notFound)
            #expect(runtime.headers[HTTPField.Name("x-amzn-ErrorType")!] == "ValidationError")
        }
    }

    @Test("POST /models?name= streams the package into the model service: stored, refused past the limit or empty, nothing left staged")
    func uploads() async throws {
        let fixture = try await HTTPApplicationFixture(authentication: false, maxPackageBytes: 64 * 1024)
        let source = fixture.folder + "/source"
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: source + "/model.joblib"))
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        tar.arguments = ["tar", "-czf", fixture.folder + "/model.tar.gz", "-C", source, "model.joblib"]
        try tar.run()
        tar.waitUntilExit()
        #expect(tar.terminationStatus == 0)
        let package = ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: fixture.folder + "/model.tar.gz")))
        let staging = fixture.packages.stagingDirectory
        try await fixture.test { client in
            let created = try await client.execute(uri: "/models?name=up", method: .post, body: package)
            #expect(created.status == .created, "\(String(buffer: created.body))")
            #expect(created.json["name"] as? String == "up")
            let tooLarge = try await client.execute(
                uri: "/models?name=big", method: .post, body: ByteBuffer(repeating: 1, count: 64 * 1024 + 1))
            #expect(tooLarge.status == .contentTooLarge)
            #expect(tooLarge.json["code"] as? String == "PayloadTooLarge")
            #expect((tooLarge.json["message"] as? String)?.contains("--max-package-bytes") == true)
            let empty = try await client.execute(uri: "/models?name=empty", method: .post)
            #expect(empty.status == .badRequest && (empty.json["message"] as? String)?.contains("empty") == true)
            let badName = try await client.execute(uri: "/models?name=no%20way", method: .post, body: package)
            #expect(badName.status == .badRequest)
            let listed = try await client.execute(uri: "/models", method: .get)
            #expect((listed.json["models"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["up"])
            let left = (try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? []
            #expect(left.isEmpty, "left in staging: \(left)")
        }
    }

    @Test("every registered REST route is in the OpenAPI document, with its method")
    func openAPIDocumentsEveryRoute() async throws {
        let fixture = try await HTTPApplicationFixture(authentication: false)
        let document = try #require(
            try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.bytes.readableBytesView)) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var documented = Set<String>()
        for (path, operations) in paths {
            for method in operations.keys where method != "parameters" { documented.insert("\(method.uppercased()) \(path)") }
        }
        var registered = Set<String>()
        // The SageMaker control plane's POST / is documented in docs/sagemaker-control-plane.md, not in OpenAPI.
        for route in fixture.builder.routes().registered where route.shape != .sageMakerJSON {
            registered.insert("\(route.method) \(route.path)")
        }
        #expect(registered.subtracting(documented).isEmpty, "registered, not documented: \(registered.subtracting(documented).sorted())")
        #expect(documented.subtracting(registered).isEmpty, "documented, not registered: \(documented.subtracting(registered).sorted())")
        try? FileManager.default.removeItem(atPath: fixture.folder)
    }
}
