import FlashSaleCore

enum BookCommand {
    static let ip = OptionSpec("--ip", value: "IP", "the buyer's IPv4 or IPv6 address, kept for bot defence")
    static let userAgent = OptionSpec("--user-agent", value: "UA", "the buyer's user agent, kept for bot defence")
    static let key = OptionSpec("--key", value: "KEY", "idempotency key: the same key again returns the same booking")

    static let spec = CommandSpec(
        "book", arguments: "SALE USER", options: [ip, userAgent, key],
        summary: "hold one item for USER, or decline (exit 6 sold out, 7 user limit, 8 not open)",
        details: "Prints the booking id. The hold lasts the sale's hold time; confirm or cancel it before then."
    ) { invocation, context in
        let request = try BookingRequest(
            sale: invocation.requiredSaleID(),
            user: invocation.text(.user, argument: "USER"),
            ip: invocation.text(.ip, option: ip),
            userAgent: invocation.text(.userAgent, option: userAgent),
            key: invocation.text(.key, option: key))
        switch try context.store().book(request, clock: context.now()) {
        case .held(let booking), .repeated(let booking):
            context.output.success(Render.bookingID(booking))
        }
    }
}
