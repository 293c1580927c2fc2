import NIOCore
import ServalArtifacts
import ServalCore
import ServalObjects
import ServalRuntime
import ServalServices
import ServalTransform

/// Plans input objects into units, and runs one unit: reads its bytes (decompressing gzip as it reads), splits
/// them into records, sends payloads of records to the job's workers with retries, and assembles the output.
struct TransformUnitReader {
    let spec: TransformJobSpec
    let objects: any ObjectStore
    /// The way into the model: each payload is one invocation on the job's workers.
    let inference: InferenceService
    /// The first delay before a failed invocation is retried; it doubles with each retry.
    let retryDelay: Duration

    // MARK: Planning

    /// The units of one input object. An uncompressed object with a split type is cut into units of about one
    /// maximum payload of whole records; a gzip object, or one of split type `None`, is one unit (records are
    /// counted through the decompressed bytes).
    ///
    /// - Throws: `.validationError` naming the object for a record above the payload limit, corrupt framing, or
    ///   data that is not gzip.
    static func plan(
        _ location: ObjectLocation, index: Int, spec: TransformJobSpec, objects: any ObjectStore
    ) async throws -> [TransformUnit] {
        var planner = UnitPlanner(splitType: spec.splitType, maxPayloadBytes: spec.maxPayloadBytes, objectIndex: index)
        let reader = try await objects.read(location, range: nil)
        do {
            if spec.compression == .gzip {
                let decoder = try Self.gzipDecoder(location)
                var plain = ByteBuffer()
                for try await chunk in reader.body {
                    plain.clear()
                    try Self.decompress(chunk, with: decoder, into: &plain, location: location)
                    try plain.withUnsafeReadableBytes { bytes throws(ServalError) in try planner.consume(bytes) }
                    _ = planner.takeCompletedUnits()
                }
                try Self.finish(decoder, location: location)
                _ = try planner.finish()
                return [UnitPlanner.wholeObjectUnit(objectIndex: index, storedSize: reader.info.size, records: planner.recordCount)]
            }
            for try await chunk in reader.body {
                try chunk.withUnsafeReadableBytes { bytes throws(ServalError) in try planner.consume(bytes) }
            }
            return try planner.finish()
        } catch let error as ServalError {
            throw ServalError(error.code, "\(location.uri): \(error.message)")
        }
    }

    // MARK: Running

    /// Runs a unit, writing its output to `part` as it goes (in pieces of about a megabyte, so that a gzip
    /// object's output is never held whole).
    ///
    /// - Parameter isStopping: whether Serval is shutting down; errors then end the unit at once (it is released
    ///   for the next start) instead of being retried.
    /// - Throws: `.overloaded` when the workers stayed busy while stopping; otherwise the error that made a
    ///   record fail after its retries, naming the object and the record.
    func run(
        _ unit: TransformUnit, of location: ObjectLocation, on runtime: any VariantServing, into part: TransformPart.Writer,
        isStopping: @escaping @Sendable () -> Bool
    ) async throws {
        let settings = try TransformRecordSettings(spec: spec)
        let context = Context(
            settings: settings, builder: PayloadBuilder(settings: settings), assembler: OutputAssembler(settings: settings),
            splitter: RecordSplitter(splitType: spec.splitType), location: location, runtime: runtime, part: part,
            isStopping: isStopping)
        var output: [UInt8] = []
        if spec.compression == .gzip {
            try await runCompressed(unit, context: context, output: &output)
        } else {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(Int(unit.end - unit.start))
            if unit.end > unit.start {
                for try await chunk in try await objects.read(location, range: unit.start...(unit.end - 1)).body {
                    bytes.append(contentsOf: chunk.readableBytesView)
                }
            }
            try await process(bytes, firstRecord: unit.firstRecord, context: context, output: &output)
        }
        if !output.isEmpty { try await part.write(output) }
    }

    /// What running a unit needs at each step.
    private struct Context {
        let settings: TransformRecordSettings
        let builder: PayloadBuilder
        let assembler: OutputAssembler
        let splitter: RecordSplitter
        let location: ObjectLocation
        let runtime: any VariantServing
        let part: TransformPart.Writer
        let isStopping: @Sendable () -> Bool
    }

    /// A gzip object is one unit: its decompressed bytes are cut into sub-units of whole records as they are
    /// read, so that memory stays bounded by about one payload whatever the object's size.
    private func runCompressed(_ unit: TransformUnit, context: Context, output: inout [UInt8]) async throws {
        let location = context.location
        var planner = UnitPlanner(splitType: spec.splitType, maxPayloadBytes: spec.maxPayloadBytes, objectIndex: unit.objectIndex)
        let decoder = try Self.gzipDecoder(location)
        var plain = ByteBuffer()
        // Decompressed bytes not yet processed; `base` is the offset of its first byte in the decompressed stream.
        var pending: [UInt8] = []
        var base: Int64 = 0
        var nextRecord = 0
        func drain(_ units: [TransformUnit], output: inout [UInt8]) async throws {
            for sub in units {
                let start = Int(sub.start - base)
                let end = Int(sub.end - base)
                try await process(Array(pending[start..<end]), firstRecord: nextRecord, context: context, output: &output)
                nextRecord += sub.records
            }
            if let last = units.last {
                pending.removeFirst(Int(last.end - base))
                base = last.end
            }
        }
        for try await chunk in try await objects.read(location, range: nil).body {
            plain.clear()
            try Self.decompress(chunk, with: decoder, into: &plain, location: location)
            pending.append(contentsOf: plain.readableBytesView)
            do {
                try plain.withUnsafeReadableBytes { bytes throws(ServalError) in try planner.consume(bytes) }
            } catch {
                throw ServalError(error.code, "\(location.uri): \(error.message)")
            }
            try await drain(planner.takeCompletedUnits(), output: &output)
        }
        try Self.finish(decoder, location: location)
        try await drain(try planner.finish(), output: &output)
    }

    /// Splits bytes of whole records, sends their payloads and appends the outputs.
    private func process(_ bytes: [UInt8], firstRecord: Int, context: Context, output: inout [UInt8]) async throws {
        let records: UnitRecords
        let payloads: [TransformPayload]
        do {
            records = try context.splitter.split(bytes, firstRecord: firstRecord)
            payloads = try context.builder.payloads(for: records)
        } catch {
            throw ServalError(error.code, "\(context.location.uri): \(error.message)")
        }
        for payload in payloads {
            let response = try await invoke(payload, of: records, context: context)
            do {
                try context.assembler.append(
                    response: Array(response.body.readableBytesView)[...], contentType: response.contentType,
                    for: payload, of: records, to: &output)
            } catch {
                throw ServalError(error.code, "\(context.location.uri): \(error.message)")
            }
            if output.count >= Self.flushBytes {
                try await context.part.write(output)
                output.removeAll(keepingCapacity: true)
            }
        }
    }

    /// How much output is gathered before it is written to the part.
    static let flushBytes = 1 << 20

    /// Sends one payload, retrying failures `maxRetries` times with doubling delays; busy workers are waited
    /// for without counting. When a payload of several records still fails because the model rejects it, its
    /// records are sent one at a time to name the one at fault.
    private func invoke(_ payload: TransformPayload, of records: UnitRecords, context: Context) async throws -> InvocationResponse {
        var retries = 0
        while true {
            do {
                return try await send(payload, context: context)
            } catch let error as ServalError {
                if context.isStopping() { throw ServalError(.overloaded, "Serval is stopping; the unit runs again at the next start.") }
                if error.code == .overloaded || error.code == .modelNotReady {
                    try await Task.sleep(for: retryDelay)
                    continue
                }
                if retries < spec.maxRetries {
                    try await Task.sleep(for: retryDelay * (1 << retries))
                    retries += 1
                    continue
                }
                if payload.recordCount > 1, error.code == .validationError || error.code == .modelError {
                    try await isolate(payload, of: records, context: context, batchError: error)
                }
                throw ServalError(
                    error.code,
                    "\(context.location.uri), \(Self.describe(payload)): the model failed after \(spec.maxRetries + 1) attempts: \(error.message)")
            }
        }
    }

    /// Sends a failed payload's records one at a time and throws for the first that fails; returns when each
    /// succeeds alone (the batch failed as a whole).
    private func isolate(
        _ payload: TransformPayload, of records: UnitRecords, context: Context, batchError: ServalError
    ) async throws {
        var single = spec
        single.batchStrategy = .singleRecord
        let builder = PayloadBuilder(settings: try TransformRecordSettings(spec: single))
        let subset = UnitRecords(
            bytes: records.bytes, splitType: records.splitType, ranges: Array(records.ranges[payload.records]),
            firstRecord: payload.firstRecord)
        for record in try builder.payloads(for: subset) {
            do {
                _ = try await send(record, context: context)
            } catch let error as ServalError {
                throw ServalError(error.code, "\(context.location.uri), \(Self.describe(record)): the model rejected it: \(error.message)")
            }
        }
    }

    private func send(_ payload: TransformPayload, context: Context) async throws -> InvocationResponse {
        try await inference.invoke(
            InvocationRequest(
                body: ByteBuffer(bytes: payload.bytes), contentType: spec.contentType, accept: spec.accept,
                customAttributes: ""),
            on: context.runtime, context: InferenceContext(path: .transform, timeoutSeconds: spec.invocationTimeoutSeconds))
    }

    /// "record 12" or "records 12 to 40" (1-based, within the object).
    private static func describe(_ payload: TransformPayload) -> String {
        let first = payload.firstRecord + 1
        return payload.recordCount == 1 ? "record \(first)" : "records \(first) to \(first + payload.recordCount - 1)"
    }

    // MARK: gzip

    private static func gzipDecoder(_ location: ObjectLocation) throws -> GzipDecoder {
        do {
            return try GzipDecoder()
        } catch {
            throw ServalError(.internalFailure, "\(location.uri): \(error.description)")
        }
    }

    private static func decompress(
        _ chunk: ByteBuffer, with decoder: GzipDecoder, into output: inout ByteBuffer, location: ObjectLocation
    ) throws {
        do {
            try decoder.decode(chunk, into: &output)
        } catch {
            throw ServalError(.validationError, "\(location.uri) is not gzip data (CompressionType is Gzip): \(error.description).")
        }
    }

    private static func finish(_ decoder: GzipDecoder, location: ObjectLocation) throws {
        do {
            try decoder.finish()
        } catch {
            throw ServalError(.validationError, "\(location.uri): \(error.description).")
        }
    }
}
