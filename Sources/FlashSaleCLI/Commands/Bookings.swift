import FlashSaleCore

enum BookingsCommand {
    static let status = OptionSpec("--status", value: "S", "only held, booked, cancelled or expired bookings")
    static let user = OptionSpec("--user", value: "USER", "only this user's bookings")

    static let spec = CommandSpec(
        "bookings", arguments: "SALE", options: [status, user],
        summary: "a sale's bookings, oldest first; a hold past its expiry shows as expired"
    ) { invocation, context in
        let bookings = try context.engine().bookings(
            of: invocation.requiredSaleID(), status: invocation.bookingStatus(status),
            user: invocation.user(option: user), clock: context.now())
        context.output.success(Render.bookings(bookings))
    }
}

enum BookingCommand {
    static let spec = CommandSpec("booking", arguments: "SALE BOOKING", summary: "one booking, every field") { invocation, context in
        let booking = try context.engine().booking(invocation.bookingID(), in: invocation.requiredSaleID(), clock: context.now())
        context.output.success(Render.booking(booking))
    }
}
