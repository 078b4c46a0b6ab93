import FlashSaleCore

/// Typed values from what was typed, each failure a usage error that names the argument.
extension Invocation {
    func flag(_ option: OptionSpec) -> Bool {
        options.has(option.name)
    }

    func saleID(_ argument: String = "SALE") throws(FlashSaleError) -> SaleID? {
        try arguments[argument].map { text throws(FlashSaleError) in try SaleID(text) }
    }

    func requiredSaleID() throws(FlashSaleError) -> SaleID {
        // The parser has already refused a missing required argument.
        guard let id = try saleID() else { throw .usage("missing SALE") }
        return id
    }

    /// A sale given as an option (`--sale SALE`), checked.
    func saleOption(_ option: OptionSpec) throws(FlashSaleError) -> SaleID? {
        try options[option.name].map { text throws(FlashSaleError) in try SaleID(text) }
    }

    /// A booking status given as an option (`--status S`), checked.
    func bookingStatus(_ option: OptionSpec) throws(FlashSaleError) -> BookingStatus? {
        try options[option.name].map { text throws(FlashSaleError) in
            guard let status = BookingStatus(rawValue: text) else {
                throw .usage("\(option.name) must be one of held, booked, cancelled, expired, not '\(Quoted(text))'")
            }
            return status
        }
    }

    func bookingID() throws(FlashSaleError) -> BookingID {
        try BookingID(arguments["BOOKING"] ?? "")
    }

    /// A required text argument (USER): non-empty, within its byte limit.
    func text(_ field: TextField, argument: String) throws(FlashSaleError) -> String {
        guard let given = arguments[argument] else {
            throw .usage("\(command.name) needs \(argument): flashsale \(command.synopsis(requiring: argument))")
        }
        guard let value = try field.validate(given, required: true) else {
            throw .usage("\(field.rawValue) must not be empty")
        }
        return value
    }

    /// An optional text option: absent, or empty (which means absent), or checked.
    func text(_ field: TextField, option: OptionSpec) throws(FlashSaleError) -> String? {
        try options[option.name].flatMap { value throws(FlashSaleError) in try field.validate(value, required: false) }
    }

    /// The USER argument, checked.
    func user(argument: String) throws(FlashSaleError) -> UserID {
        UserID(trusted: try text(.user, argument: argument))
    }

    /// A `--user` option, checked; nil when absent. It narrows what a command may touch
    /// (confirm's and cancel's check of whose booking it is, `bookings`' filter): empty, it
    /// would have confirmed or cancelled anyone's, or listed everyone's.
    func user(option: OptionSpec) throws(FlashSaleError) -> UserID? {
        try refuseEmpty(option, saying: "must not be empty: leave it out to allow any user")
        return try text(.user, option: option).map(UserID.init(trusted:))
    }

    /// Refuses `option` given empty (exit 2, "OPTION `advice`"), where other options take
    /// empty for absent: one that narrows what a command allows, which a script's variable
    /// that came out empty would widen to anything.
    func refuseEmpty(_ option: OptionSpec, saying advice: String) throws(FlashSaleError) {
        guard options[option.name]?.isEmpty != true else { throw .usage("\(option.name) \(advice)") }
    }

    /// A whole number from an option or an argument, within `range`.
    func wholeNumber(_ name: String, in range: ClosedRange<Int64>) throws(FlashSaleError) -> Int64? {
        guard let text = options[name] ?? arguments[name] else { return nil }
        let digits = Array(text.utf8)
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let value = Int64(text), range.contains(value)
        else {
            throw .usage("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(Quoted(text))'")
        }
        return value
    }

    /// The duration `option` gives; the refusal names `limit`, the option's own when it has
    /// one (--hold said "up to 87840h", and then, for 721h, "at most 720h": found by probing).
    func span(_ option: OptionSpec, limit: Span = .maximum) throws(FlashSaleError) -> Span? {
        guard let text = options[option.name] else { return nil }
        guard let span = Span.parse(text) else {
            throw .usage("\(option.name) '\(Quoted(text))' is not a duration: use 90s, 5m, 1h30m, 250ms or seconds, up to \(limit.hoursText)")
        }
        return span
    }

    func instant(_ option: OptionSpec, now: Instant) throws(FlashSaleError) -> Instant? {
        guard let text = options[option.name] else { return nil }
        guard let instant = Instant.parse(text, now: now) else {
            throw .usage("\(option.name) '\(Quoted(text))' is not a time: use RFC 3339 (2026-11-24T15:00:00Z), Unix seconds or +DURATION (up to \(Span.maximumText)), from 1970 to 9999-11-30")
        }
        return instant
    }
}
