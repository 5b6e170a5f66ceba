extension TaskEnvelope {
    /// The `conveyor_rate_limit_key` header: the key a per-key rate limit (`RateLimitKey.header` on the worker) counts
    /// this task under. A number is read as its decimal text.
    public var rateLimitKey: String? {
        get {
            switch conveyor[ConveyorHeader.rateLimitKey.rawValue] {
            case .string(let key)?: key
            case .int(let key)?: String(key)
            default: nil
            }
        }
        set { conveyor[ConveyorHeader.rateLimitKey.rawValue] = newValue.map(JSONValue.string) }
    }
}
