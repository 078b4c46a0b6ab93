import FlashSaleCore

/// How one fuzz input drives `RequestReader`: its first three bytes are settings, the rest
/// is the input, so one corpus entry says both what is read and how it arrives.
///
/// - byte 0, bits 0-3: chunk size 1...16 for the chunked read compared with the whole read
///   (in thousands of bytes when padded: byte-sized chunks of 70 KB would make the run crawl);
///   bit 4: leave the format to sniffing (as `submit --file` without `--format` does);
///   bits 5, 6 and 7 all set (rarely, as such inputs are slow): insert a run of `a`
///   (300 × byte 1 bytes, up to 76,500) at offset byte 2, so that records past the
///   65,536-byte limit are reached from small inputs.
public struct ReaderInput {
    public let bytes: [UInt8]
    public let chunkSize: Int
    public let sniff: Bool

    public init?(_ data: UnsafeBufferPointer<UInt8>) {
        guard data.count >= 3 else { return nil }
        let settings = data[0]
        let padded = settings & 0xE0 == 0xE0
        chunkSize = (Int(settings & 0x0F) + 1) * (padded ? 1000 : 1)
        sniff = settings & 0x10 != 0
        var bytes = Array(data[3...])
        if padded {
            let run = [UInt8](repeating: UInt8(ascii: "a"), count: 300 * Int(data[1]))
            bytes.insert(contentsOf: run, at: Int(data[2]) % (bytes.count + 1))
        }
        self.bytes = bytes
        lineCount = bytes.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) } + (bytes.last.map { $0 == 0x0A ? 0 : 1 } ?? 0)
    }

    /// Physical lines: every LF ends one, and bytes after the last LF make one more.
    public let lineCount: Int
}

/// Every outcome of reading `input`, handed over `chunkSize` bytes at a time, and the
/// format the reader ended with.
public func readAll(_ input: [UInt8], format: RequestFormat?, chunkSize: Int) -> ([ReadOutcome], RequestFormat?) {
    var offset = 0
    var reader = RequestReader(format: format) {
        guard offset < input.count else { return nil }
        let end = min(input.count, offset + chunkSize)
        defer { offset = end }
        return Array(input[offset..<end])
    }
    var outcomes: [ReadOutcome] = []
    do {
        while let outcome = try reader.next() { outcomes.append(outcome) }
    } catch {
        require(false, "the reader threw \(error), but its input cannot fail")
    }
    return (outcomes, reader.format)
}

/// The properties every read must have, whatever the format:
/// - the chunking of the input changes nothing;
/// - outcomes come in input order, each on a line the input has;
/// - every record's values keep the contract's limits (empty means absent, so never "").
/// Returns the records, for a format-specific round trip.
public func checkRead(_ input: ReaderInput, format: RequestFormat) -> ([RequestRecord], RequestFormat?) {
    let given: RequestFormat? = input.sniff ? nil : format
    let (whole, finalFormat) = readAll(input.bytes, format: given, chunkSize: Int.max)
    let (chunked, _) = readAll(input.bytes, format: given, chunkSize: input.chunkSize)
    require(whole == chunked, "read whole: \(whole)\nin chunks of \(input.chunkSize): \(chunked)")

    var previous = 0
    var records: [RequestRecord] = []
    for outcome in whole {
        let line: Int
        switch outcome {
        case .record(let record):
            line = record.line
            checkLimits(record)
            records.append(record)
        case .malformed(let at, let reason):
            line = at
            require(!reason.isEmpty && !reason.contains("\n") && !reason.contains("\r"), "line \(at): reason '\(reason)' is not one line")
        }
        require(line > previous, "line \(line) comes after line \(previous)")
        require(line <= input.lineCount, "line \(line) of an input with \(input.lineCount) lines")
        previous = line
    }
    return (records, finalFormat)
}

private func checkLimits(_ record: RequestRecord) {
    let values: [(String?, Int)] = [(record.user, 256), (record.ip, 64), (record.userAgent, 1024), (record.key, 256)]
    for (value, limit) in values {
        guard let value else { continue }
        require(!value.isEmpty && value.utf8.count <= limit && !value.utf8.contains(0), "line \(record.line): value '\(value)' breaks its limits")
    }
    if let ip = record.ip { require(IPAddress(ip) != nil, "line \(record.line): ip '\(ip)' does not parse") }
}

/// Reading `encoded` (records written out again by a fuzz target) gives `records` back,
/// value for value; line numbers may differ.
public func checkRoundTrip(_ records: [RequestRecord], encoded: [UInt8], format: RequestFormat) {
    let (outcomes, _) = readAll(encoded, format: format, chunkSize: Int.max)
    let again = outcomes.map { outcome -> RequestRecord? in
        guard case .record(let record) = outcome else { return nil }
        return record
    }
    require(again.count == records.count, "\(records.count) records read back as \(outcomes)")
    for (original, reread) in zip(records, again) {
        require(reread.map { [$0.user, $0.ip, $0.userAgent, $0.key] } == [original.user, original.ip, original.userAgent, original.key],
                "line \(original.line): \(original) reads back as \(String(describing: reread))")
    }
}
