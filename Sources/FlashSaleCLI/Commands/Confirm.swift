import FlashSaleCore

enum ConfirmCommand {
    static let user = OptionSpec("--user", value: "USER", "refuse (exit 3) unless the booking is this user's")

    static let spec = CommandSpec(
        "confirm", arguments: "SALE BOOKING", options: [user],
        summary: "turn a hold into a booking (held -> booked) before it expires",
        details: "Already booked: exit 0, unchanged. At or after expires_at: exit 5. Cancelled: exit 4."
    ) { invocation, context in
        let (id, sale, owner) = (try invocation.bookingID(), try invocation.requiredSaleID(), try invocation.user(option: user))
        let booking = try context.engine().confirm(id, in: sale, user: owner, clock: context.now())
        context.output.success(Render.bookingStatus(booking))
    }
}
