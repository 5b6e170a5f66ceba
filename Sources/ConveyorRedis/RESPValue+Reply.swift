import CHiredis

extension RESPValue {
    /// Copies a hiredis reply into Swift values; the caller still owns (and frees) `reply`.
    init(reply: UnsafePointer<redisReply>) {
        let raw = reply.pointee
        switch raw.type {
        case REDIS_REPLY_STRING:
            self = .bulkString(Array(UnsafeRawBufferPointer(start: raw.str, count: raw.str == nil ? 0 : raw.len)))
        case REDIS_REPLY_STATUS:
            self = .simpleString(Self.text(raw))
        case REDIS_REPLY_ERROR:
            self = .error(Self.text(raw))
        case REDIS_REPLY_INTEGER:
            self = .integer(Int(raw.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(raw.elements)
            if let element = raw.element {
                for index in 0..<raw.elements {
                    if let child = element[index] {
                        elements.append(RESPValue(reply: child))
                    } else {
                        elements.append(.null)
                    }
                }
            }
            self = .array(elements)
        default:
            self = .null
        }
    }

    private static func text(_ raw: redisReply) -> String {
        String(decoding: UnsafeRawBufferPointer(start: raw.str, count: raw.str == nil ? 0 : raw.len), as: UTF8.self)
    }

    /// A top-level reply as what `send` returns: an error reply becomes the matching ``RedisError``.
    var asResult: Result<RESPValue, RedisError> {
        if case .error(let message) = self { return .failure(RedisError(serverMessage: message)) }
        return .success(self)
    }
}
