import HTTPTypes
import ServalAuth
import Testing

@testable import ServalHTTP

/// Which action each route of the HTTP port needs, and in which protocol's shape it is refused.
@Suite struct RouteAccessTests {
    func access(_ method: HTTPRequest.Method, _ path: String, target: String? = nil) -> RouteAccess {
        RouteAccess(method: method, path: path, target: target)
    }

    @Test("health routes and server metadata are open; nothing else is")
    func openRoutes() {
        for path in ["/ping", "/v2", "/v2/", "/v2/health/live", "/v2/health/ready", "/ping?x=1"] {
            #expect(access(.get, path).action == nil, "\(path)")
        }
        #expect(access(.post, "/ping").action != nil)
        #expect(access(.post, "/v2/health/live").action != nil)
        #expect(access(.get, "/openapi.json").action == .invoke)
        #expect(access(.get, "/nothing/here").action == .describeResources)
        #expect(access(.post, "/nothing/here").action == .manageAccessKeys)
    }

    @Test("the runtime invokes; async results are read; resources are described or managed")
    func restRoutes() {
        #expect(access(.post, "/endpoints/e/invocations") == RouteAccess(action: .invoke, shape: .sageMakerRuntime))
        #expect(access(.post, "/endpoints/e/invocations-response-stream").action == .invoke)
        #expect(access(.post, "/endpoints/e/async-invocations") == RouteAccess(action: .invoke, shape: .sageMakerRuntime))
        #expect(access(.get, "/endpoints/e/async-invocations?status=Completed").action == .readInvocationResults)
        #expect(access(.get, "/endpoints/e/async-invocations/i/result").action == .readInvocationResults)
        #expect(access(.delete, "/endpoints/e/async-invocations/i").action == .invoke)
        #expect(access(.get, "/endpoints").action == .describeResources)
        #expect(access(.get, "/endpoints/e") == RouteAccess(action: .describeResources, shape: .rest))
        #expect(access(.post, "/endpoints").action == .manageEndpoints)
        #expect(access(.delete, "/endpoints/e").action == .manageEndpoints)
        #expect(access(.post, "/models?name=m").action == .manageModels)
        #expect(access(.get, "/models/m").action == .describeResources)
        #expect(access(.delete, "/endpoint-configs/c").action == .manageEndpointConfigs)
        #expect(access(.post, "/transform-jobs/t/stop").action == .manageTransformJobs)
        #expect(access(.get, "/transform-jobs").action == .describeResources)
        #expect(access(.get, "/access-keys").action == .manageAccessKeys)
        #expect(access(.delete, "/access-keys/SK").action == .manageAccessKeys)
    }

    @Test("the Open Inference Protocol: inference and metadata invoke, statistics describe, load manages")
    func openInference() {
        #expect(access(.post, "/v2/models/m/infer") == RouteAccess(action: .invoke, shape: .openInference))
        #expect(access(.post, "/v2/models/m/versions/1/infer").action == .invoke)
        #expect(access(.get, "/v2/models/m").action == .invoke)
        #expect(access(.get, "/v2/models/m/ready").action == .invoke)
        #expect(access(.get, "/v2/models/stats").action == .describeResources)
        #expect(access(.get, "/v2/models/m/stats").action == .describeResources)
        #expect(access(.post, "/v2/repository/index").action == .describeResources)
        #expect(access(.post, "/v2/repository/models/m/load").action == .manageEndpoints)
        #expect(access(.post, "/v2/repository/models/m/unload").action == .manageEndpoints)
    }

    @Test("the control plane: by X-Amz-Target operation")
    func controlPlane() {
        let cases: [(String?, AccessAction)] = [
            ("SageMaker.ListEndpoints", .describeResources), ("SageMaker.DescribeModel", .describeResources),
            ("SageMaker.CreateModel", .manageModels), ("SageMaker.DeleteModel", .manageModels),
            ("SageMaker.CreateEndpointConfig", .manageEndpointConfigs),
            ("SageMaker.DeleteEndpointConfig", .manageEndpointConfigs),
            ("SageMaker.CreateEndpoint", .manageEndpoints), ("SageMaker.UpdateEndpoint", .manageEndpoints),
            ("SageMaker.UpdateEndpointWeightsAndCapacities", .manageEndpoints),
            ("SageMaker.StopTransformJob", .manageTransformJobs), ("SageMaker.CreateTransformJob", .manageTransformJobs),
            ("SageMaker.AddTags", .manageTags), ("SageMaker.DeleteTags", .manageTags), ("SageMaker.ListTags", .describeResources),
            ("SageMaker.CreateTrainingJob", .manageAccessKeys), ("SageMaker.Frobnicate", .describeResources),
            (nil, .describeResources),
        ]
        for (target, action) in cases {
            #expect(access(.post, "/", target: target) == RouteAccess(action: action, shape: .sageMakerJSON), "\(target ?? "none")")
        }
        #expect(access(.get, "/").shape == .rest)
    }

    @Test("roles meet routes: an invoker invokes and nothing more, a deployer everything but keys")
    func roles() {
        let invoke = access(.post, "/endpoints/e/invocations").action!
        let deploy = access(.post, "/", target: "SageMaker.CreateEndpoint").action!
        let keys = access(.post, "/access-keys").action!
        #expect(AccessKeyRole.invoker.permits(invoke) && !AccessKeyRole.invoker.permits(deploy))
        #expect(AccessKeyRole.deployer.permits(deploy) && !AccessKeyRole.deployer.permits(keys))
        #expect(AccessKeyRole.admin.permits(keys))
    }

    @Test("CloudWatch Logs on the control plane's route and the /logs routes only read: operations Serval does not serve are refused by the dispatcher, not escalated")
    func workerLogs() {
        for operation in ["DescribeLogStreams", "GetLogEvents", "FilterLogEvents", "CreateLogGroup", "DeleteLogStream", "PutLogEvents"] {
            #expect(
                access(.post, "/", target: "Logs_20140328.\(operation)") == RouteAccess(action: .describeResources, shape: .sageMakerJSON),
                "\(operation)")
        }
        #expect(access(.get, "/endpoints/e/logs?since=1").action == .describeResources)
        #expect(access(.get, "/transform-jobs/t/logs?nextToken=3").action == .describeResources)
    }
}
