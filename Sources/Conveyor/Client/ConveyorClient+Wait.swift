import ConveyorIO
import ConveyorRedis

extension ConveyorClient {
    /// Waits until `count` of `refs` are ready (SUCCESS, FAILURE or REVOKED) or `timeout` passes, like `ray.wait`.
    ///
    /// - Parameter count: how many ready refs to wait for; all of them when `nil` (at most `refs.count`).
    /// - Returns: the ready and the pending refs, each in the order of `refs`. On timeout `ready` may hold fewer
    ///   than `count`; this is not an error.
    /// - Throws: ``ConveyorError/closed``, or the ``RedisError`` of a read.
    public func wait<Output>(
        _ refs: [ObjectRef<Output>], count: Int? = nil, timeout: Duration
    ) async throws -> (ready: [ObjectRef<Output>], pending: [ObjectRef<Output>]) {
        let wanted = min(max(count ?? refs.count, 0), refs.count)
        var readyIDs = Set<String>()
        if wanted > 0 {
            // How many of `refs` each id stands for (a ref may be listed twice).
            var multiplicity: [String: Int] = [:]
            // Refs of this client's own tasks are watched through its notify channel; others one by one.
            var watched = Set<String>()
            var followed: [String: Bool] = [:]
            for ref in refs {
                multiplicity[ref.id, default: 0] += 1
                if ref.submittedHere && !configuration.followCeleryResultChannels {
                    watched.insert(ref.id)
                } else {
                    followed[ref.id] = true
                }
            }
            watched.subtract(followed.keys)
            readyIDs = try await waitForReady(
                watched: watched, followed: Array(followed.keys), multiplicity: multiplicity, wanted: wanted,
                timeout: timeout)
        }
        var ready: [ObjectRef<Output>] = []
        var pending: [ObjectRef<Output>] = []
        for ref in refs {
            if readyIDs.contains(ref.id) { ready.append(ref) } else { pending.append(ref) }
        }
        return (ready, pending)
    }

    /// Waits until the ready ids among `watched` and `followed` stand for `wanted` refs, or `timeout` passes;
    /// returns the ready ids.
    ///
    /// `watched` ids cost no subscription of their own and no result read per notification: one watch is
    /// registered for all of them, their results are checked in `MGET` batches once, and from then on each
    /// notification on the client's channel marks its id ready. `followed` ids are waited for one by one.
    private func waitForReady(
        watched: Set<String>, followed: [String], multiplicity: [String: Int], wanted: Int, timeout: Duration
    ) async throws -> Set<String> {
        var readyIDs = Set<String>()
        var readyCount = 0
        func mark(_ id: String) -> Bool {
            if readyIDs.insert(id).inserted { readyCount += multiplicity[id] ?? 0 }
            return readyCount >= wanted
        }
        let watch = ReadyWatch(ids: watched)
        if !watched.isEmpty {
            try await ensureNotifications()
            waiters.add(watch)
        }
        defer { waiters.remove(watch) }
        // Registered first, read second: a task finishing in between is seen by one or the other.
        for id in try await readyAmong(Array(watched)) where mark(id) { return readyIDs }

        let failure = LockedValue<(any Error)?>(nil)
        await withTaskGroup(of: Void.self) { group in
            for id in followed {
                group.addTask {
                    do {
                        _ = try await self.awaitReady(id, submittedHere: false)
                        watch.yield(id)
                    } catch {
                        failure.withLock { $0 = $0 ?? error }
                        watch.finish()
                    }
                }
            }
            group.addTask {
                // Timing out is not an error: the stream ends and the caller gets what is ready.
                try? await Task.sleep(for: timeout)
                watch.finish()
            }
            for await id in watch.ready where mark(id) { break }
            group.cancelAll()
        }
        if readyCount < wanted {
            if let error = failure.withLock({ $0 }), !(error is CancellationError) { throw error }
            if isClosed { throw ConveyorError.closed }
        }
        return readyIDs
    }

    /// Which of `ids` already have a ready result, read with `MGET` in batches of 1,000.
    private func readyAmong(_ ids: [String]) async throws -> [String] {
        var ready: [String] = []
        var start = 0
        while start < ids.count {
            let batch = ids[start..<min(start + 1_000, ids.count)]
            start += batch.count
            var command = RedisCommand("MGET")
            for id in batch { command.append(store.keys.result(id)) }
            let reply = try await redis.send(command)
            guard let values = reply.array, values.count == batch.count else {
                throw TaskStoreError.unexpectedReply(script: "MGET", reply: reply.description)
            }
            for (id, value) in zip(batch, values) {
                if let bytes = value.bytes, (try? CeleryResultMeta(json: bytes))?.state?.isReady == true {
                    ready.append(id)
                }
            }
        }
        return ready
    }

    /// The ready meta of `id`, waiting at most `timeout`.
    ///
    /// - Throws: ``ConveyorError/timeout(id:after:)``, ``ConveyorError/closed``, ``RedisError``.
    func awaitReady(_ id: String, submittedHere: Bool, timeout: Duration) async throws -> CeleryResultMeta {
        try await withThrowingTaskGroup(of: CeleryResultMeta?.self) { group in
            group.addTask { try await self.awaitReady(id, submittedHere: submittedHere) }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let meta = first else {
                throw ConveyorError.timeout(id: id, after: timeout)
            }
            return meta
        }
    }

    /// The ready meta of `id`, however long it takes (cancel the calling task to stop).
    ///
    /// The waiter is registered before the meta is read once, and the subscription that feeds it is active before
    /// that read: a task that finishes at any moment is seen either by the read or by a notification.
    func awaitReady(_ id: String, submittedHere: Bool) async throws -> CeleryResultMeta {
        do {
            return try await awaitReadyUnlessClosed(id, submittedHere: submittedHere)
        } catch {
            // A wait that overlaps close() may fail inside Redis first; report it as what it is.
            if isClosed { throw ConveyorError.closed }
            throw error
        }
    }

    var isClosed: Bool {
        notifications.withLock { state in
            if case .closed = state { return true }
            return false
        }
    }

    private func awaitReadyUnlessClosed(_ id: String, submittedHere: Bool) async throws -> CeleryResultMeta {
        try await ensureNotifications()
        let waiter = ResultWaiter(id: id)
        if submittedHere && !configuration.followCeleryResultChannels {
            waiters.add(waiter)
            defer { waiters.remove(waiter) }
            try await check(waiter)
            return try await waiter.value
        }
        // Someone else's task (its reply_to is not ours), or one a Celery worker may run (Celery does not publish
        // on `P notify:`): follow Celery's own result channel, routed through the one pattern subscription every
        // such ref shares.
        let subscriber = try await redis.subscriber
        let subscription = try await subscriber.subscribe(
            channel: store.keys.result(id),
            viaPattern: store.keys.resultPrefix + RedisKeys.celeryResultKeyPrefix + "*")
        waiters.add(waiter)
        defer {
            waiters.remove(waiter)
            subscription.unsubscribe()
        }
        return try await withThrowingTaskGroup(of: CeleryResultMeta?.self) { group in
            group.addTask {
                for await _ in subscription { await self.refresh(id) }
                return nil
            }
            group.addTask {
                try await self.check(waiter)
                return try await waiter.value
            }
            defer { group.cancelAll() }
            while let next = try await group.next() {
                if let meta = next { return meta }
            }
            throw CancellationError()
        }
    }

    /// Reads the meta of the waiter's task once and resolves the waiter if the task is ready.
    private func check(_ waiter: ResultWaiter) async throws {
        if let meta = try await store.resultMeta(waiter.id), meta.state?.isReady == true {
            waiter.resolve(.success(meta))
        }
    }

    /// Reads the meta of `id` and resumes its waiters if the task is ready. A read that fails leaves them waiting:
    /// the next notification or reconnect reads again, and their own timeouts still apply.
    func refresh(_ id: String) async {
        do {
            if let meta = try await store.resultMeta(id), meta.state?.isReady == true {
                waiters.resolve(id, with: meta)
            }
        } catch {
            logger.debug("result read failed", metadata: ["id": .string(id), "error": "\(error)"])
        }
    }

    /// Subscribes to `P notify:<client id>` once per client; every waiter awaits the same subscription.
    func ensureNotifications() async throws {
        let startup: Task<Void, any Error>? = try notifications.withLock { state in
            switch state {
            case .closed: throw ConveyorError.closed
            case .running: return nil
            case .starting(let task): return task
            case .idle:
                let task = Task { try await self.startNotifications() }
                state = .starting(task)
                return task
            }
        }
        guard let startup else { return }
        do {
            try await startup.value
        } catch {
            // Let the next waiter try again.
            notifications.withLock { state in
                if case .starting(let current) = state, current == startup { state = .idle }
            }
            throw error
        }
    }

    private func startNotifications() async throws {
        let subscriber = try await redis.subscriber
        let reconnections = subscriber.reconnections()
        let subscription = try await subscriber.subscribe([store.keys.notify(clientID)])
        // The loop runs as long as the client: it is not tied to any one caller's task, so it is an unstructured
        // task the client owns, kept in `notifications` and cancelled by `close()`.
        let loop = Task { await self.runNotifications(subscription, reconnections: reconnections) }
        let closed = notifications.withLock { state in
            if case .closed = state { return true }
            state = .running(loop)
            return false
        }
        if closed {
            loop.cancel()
            throw ConveyorError.closed
        }
    }

    private func runNotifications(_ subscription: RedisSubscription, reconnections: AsyncStream<Void>) async {
        await withDiscardingTaskGroup { group in
            group.addTask {
                // Notifications published while the subscriber was down are lost: read every outstanding task.
                for await _ in reconnections {
                    for id in self.waiters.outstandingIDs { await self.refresh(id) }
                }
            }
            for await message in subscription {
                // `<id>` or `<id>\n<meta>` (docs/PROTOCOL.md §5, "Notify"): with the meta no read is needed.
                let payload = message.payload
                let newline = payload.firstIndex(of: UInt8(ascii: "\n"))
                let id = String(decoding: payload[..<(newline ?? payload.endIndex)], as: UTF8.self)
                // Watches learn it from the notification itself; a waiter for the result needs the meta.
                guard waiters.notified(id) else { continue }
                if let newline, let meta = try? CeleryResultMeta(json: Array(payload[(newline + 1)...])),
                    meta.state?.isReady == true
                {
                    waiters.resolve(id, with: meta)
                    continue
                }
                group.addTask { await self.refresh(id) }
            }
            group.cancelAll()
        }
    }
}
