/// What an access key may do. Roles nest: an admin may do everything a deployer may, a deployer everything an
/// invoker may.
///
/// | Action                     | admin | deployer | invoker |
/// |----------------------------|:-----:|:--------:|:-------:|
/// | ``AccessAction/manageAccessKeys``      | ✓ |   |   |
/// | ``AccessAction/describeResources``     | ✓ | ✓ |   |
/// | ``AccessAction/manageModels``          | ✓ | ✓ |   |
/// | ``AccessAction/manageEndpointConfigs`` | ✓ | ✓ |   |
/// | ``AccessAction/manageEndpoints``       | ✓ | ✓ |   |
/// | ``AccessAction/manageTransformJobs``   | ✓ | ✓ |   |
/// | ``AccessAction/manageTags``            | ✓ | ✓ |   |
/// | ``AccessAction/readObjects``           | ✓ | ✓ |   |
/// | ``AccessAction/writeObjects``          | ✓ | ✓ |   |
/// | ``AccessAction/invoke``                | ✓ | ✓ | ✓ |
/// | ``AccessAction/readInvocationResults`` | ✓ | ✓ | ✓ |
///
/// Why an invoker gets so little: it is the key an application embeds, so it should not reveal more than the
/// answers it asks for. Describing models shows their environment variables (which often hold credentials), and
/// general object access would expose model artifacts or, with writes, let it replace the code a later deployment
/// runs. It may read the results of async invocations through Serval's invocation status API; inputs for async
/// invocations go inline or are staged by a deployer.
public enum AccessKeyRole: String, Sendable, Codable, CaseIterable, Comparable {
    /// Everything, including creating and deleting access keys.
    case admin
    /// Deploys and operates models: models, endpoint configs, endpoints, transform jobs, objects, and invoking.
    case deployer
    /// Invokes endpoints and reads the results of its async invocations; nothing else.
    case invoker

    /// Whether this role may perform `action` (the table above).
    public func permits(_ action: AccessAction) -> Bool {
        switch action {
        case .manageAccessKeys:
            self == .admin
        case .describeResources, .manageModels, .manageEndpointConfigs, .manageEndpoints, .manageTransformJobs,
            .manageTags, .readObjects,
            .writeObjects:
            self <= .deployer
        case .invoke, .readInvocationResults:
            true
        }
    }

    /// Throws ``AccessDenied`` unless this role permits `action`.
    ///
    /// - Parameter accessKeyID: the key making the request, named in the error message.
    public func authorize(_ action: AccessAction, accessKeyID: String) throws(AccessDenied) {
        guard permits(action) else { throw AccessDenied(accessKeyID: accessKeyID, role: self, action: action) }
    }

    /// Ordered from most to least privileged: `admin < deployer < invoker`.
    public static func < (lhs: AccessKeyRole, rhs: AccessKeyRole) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// The classes of action that roles grant. Each API operation belongs to exactly one.
public enum AccessAction: String, Sendable, CaseIterable {
    /// Create, list and delete access keys.
    case manageAccessKeys
    /// Describe and list models, endpoint configs, endpoints and transform jobs; endpoint statistics and metrics.
    case describeResources
    /// Create and delete models (SageMaker `CreateModel`, `DeleteModel`; model packages).
    case manageModels
    /// Create and delete endpoint configs.
    case manageEndpointConfigs
    /// Create, update, scale and delete endpoints; load and unload models (OIP repository extension).
    case manageEndpoints
    /// Create and stop transform jobs.
    case manageTransformJobs
    /// Add and delete the tags of models, endpoint configs, endpoints and transform jobs (SageMaker `AddTags`,
    /// `DeleteTags`; `ListTags` describes).
    case manageTags
    /// Get, head and list objects and buckets in Serval's object store.
    case readObjects
    /// Put, copy and delete objects; create and delete buckets; multipart uploads.
    case writeObjects
    /// Invoke endpoints: real-time, streaming and async SageMaker invocations, OIP inference over REST and gRPC, and
    /// the model metadata and readiness an inference client needs.
    case invoke
    /// Read the status of async invocations and the result or failure they produced.
    case readInvocationResults
}

/// An authenticated access key tried something its role does not permit.
public struct AccessDenied: Error, Sendable, Equatable, CustomStringConvertible {
    /// The access key that made the request.
    public var accessKeyID: String
    /// Its role.
    public var role: AccessKeyRole
    /// What it tried.
    public var action: AccessAction

    /// Creates the error.
    public init(accessKeyID: String, role: AccessKeyRole, action: AccessAction) {
        self.accessKeyID = accessKeyID
        self.role = role
        self.action = action
    }

    /// A message for the client: which key, which role, and what role would be needed.
    public var message: String {
        let needed = AccessKeyRole.allCases.last { $0.permits(action) } ?? .admin
        return "Access key \(accessKeyID) has the role '\(role.rawValue)', which is not authorized to perform "
            + "\(action.rawValue); use a key with the role '\(needed.rawValue)' or higher."
    }

    /// The error for SageMaker's JSON protocols: `AccessDeniedException`, HTTP 403.
    public var sageMakerError: AWSErrorResponse {
        AWSErrorResponse(code: "AccessDeniedException", message: message, httpStatus: 403)
    }

    /// The error for S3: `AccessDenied`, HTTP 403.
    public var s3Error: AWSErrorResponse {
        AWSErrorResponse(code: "AccessDenied", message: "Access Denied. " + message, httpStatus: 403)
    }

    /// The ``message``.
    public var description: String { message }
}
