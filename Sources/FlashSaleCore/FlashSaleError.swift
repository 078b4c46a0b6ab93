/// Every failure a user can see. Each case has exactly one exit code and one JSON `error.code`,
/// the contract's table; the CLI maps errors to exits here and nowhere else.
public enum FlashSaleError: Error, Equatable, Sendable {
    case usage(String)
    case notFound(String)
    case conflict(String)
    case holdExpired(String)
    case soldOut(String)
    case userLimit(String)
    case notOpen(String)
    case blocked(String)
    case invariant(String)
    case badInput(String)
    case cantOpen(String)
    case io(String)
    case busy(String)
    /// Stopped by SIGINT, SIGTERM or SIGHUP, after cleaning up.
    case interrupted(String)
    case internalFailure(String)

    public var exitCode: Int32 { errorCode.exitCode }

    /// The contract's `error.code`.
    public var code: String { errorCode.rawValue }

    public var errorCode: ErrorCode {
        switch self {
        case .internalFailure: .internalFailure
        case .usage: .usage
        case .notFound: .notFound
        case .conflict: .conflict
        case .holdExpired: .holdExpired
        case .soldOut: .soldOut
        case .userLimit: .userLimit
        case .notOpen: .notOpen
        case .blocked: .blocked
        case .invariant: .invariant
        case .badInput: .badInput
        case .cantOpen: .cantOpen
        case .io: .io
        case .busy: .busy
        case .interrupted: .interrupted
        }
    }

    public init(_ code: ErrorCode, _ message: String) {
        switch code {
        case .internalFailure: self = .internalFailure(message)
        case .usage: self = .usage(message)
        case .notFound: self = .notFound(message)
        case .conflict: self = .conflict(message)
        case .holdExpired: self = .holdExpired(message)
        case .soldOut: self = .soldOut(message)
        case .userLimit: self = .userLimit(message)
        case .notOpen: self = .notOpen(message)
        case .blocked: self = .blocked(message)
        case .invariant: self = .invariant(message)
        case .badInput: self = .badInput(message)
        case .cantOpen: self = .cantOpen(message)
        case .io: self = .io(message)
        case .busy: self = .busy(message)
        case .interrupted: self = .interrupted(message)
        }
    }

    public var message: String {
        switch self {
        case .usage(let m), .notFound(let m), .conflict(let m), .holdExpired(let m),
             .soldOut(let m), .userLimit(let m), .notOpen(let m), .blocked(let m),
             .invariant(let m), .badInput(let m), .cantOpen(let m), .io(let m),
             .busy(let m), .interrupted(let m), .internalFailure(let m):
            m
        }
    }
}

/// The contract's error codes (the command line's `error.code` and HTTP's), each with its
/// exit code.
public enum ErrorCode: String, Sendable, CaseIterable {
    case internalFailure = "internal"
    case usage
    case notFound = "not_found"
    case conflict
    case holdExpired = "hold_expired"
    case soldOut = "sold_out"
    case userLimit = "user_limit"
    case notOpen = "not_open"
    case blocked
    case invariant
    case badInput = "bad_input"
    case cantOpen = "cant_open"
    case io
    case busy
    case interrupted

    public var exitCode: Int32 {
        switch self {
        case .internalFailure: 1
        case .usage: 2
        case .notFound: 3
        case .conflict: 4
        case .holdExpired: 5
        case .soldOut: 6
        case .userLimit: 7
        case .notOpen: 8
        case .blocked: 9
        case .invariant: 10
        case .badInput: 65
        case .cantOpen: 73
        case .io: 74
        case .busy: 75
        // 128 + SIGINT, as a shell reports a command a signal stopped.
        case .interrupted: 130
        }
    }
}
