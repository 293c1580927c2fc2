public import ServalServices

/// Settings of asynchronous inference for one Serval process.
public struct AsyncSettings: Sendable {
    /// Identifies this process's leases; unique per start.
    public var owner: String
    /// How long a claim lasts without a heartbeat. A dispatcher that dies holds its work this long before the
    /// rescuer re-queues it.
    public var leaseDuration: Duration
    /// How often the queue is looked at when nothing signals new work (leases, expiry, retries).
    public var pollInterval: Duration
    /// Inputs up to this size are read into memory and batched with real-time requests; larger ones go to the
    /// worker as a file.
    public var inMemoryInputLimit: Int
    /// Where webhooks may go.
    public var webhookPolicy: WebhookPolicy
    /// How many times a notification is tried before it is dropped (with an error in the log).
    public var webhookMaxAttempts: Int
    /// The first retry delay of a notification; each retry doubles it, up to `webhookMaxBackoff`.
    public var webhookInitialBackoff: Duration
    /// The longest delay between notification retries.
    public var webhookMaxBackoff: Duration
    /// How long one webhook request may take.
    public var webhookTimeout: Duration

    /// Creates settings with Serval's defaults.
    public init(
        owner: String,
        leaseDuration: Duration = .seconds(30),
        pollInterval: Duration = .seconds(1),
        inMemoryInputLimit: Int = 6 * 1024 * 1024,
        webhookPolicy: WebhookPolicy = .anyHost,
        webhookMaxAttempts: Int = 12,
        webhookInitialBackoff: Duration = .seconds(1),
        webhookMaxBackoff: Duration = .seconds(300),
        webhookTimeout: Duration = .seconds(10)
    ) {
        self.owner = owner
        self.leaseDuration = leaseDuration
        self.pollInterval = pollInterval
        self.inMemoryInputLimit = inMemoryInputLimit
        self.webhookPolicy = webhookPolicy
        self.webhookMaxAttempts = webhookMaxAttempts
        self.webhookInitialBackoff = webhookInitialBackoff
        self.webhookMaxBackoff = webhookMaxBackoff
        self.webhookTimeout = webhookTimeout
    }
}
