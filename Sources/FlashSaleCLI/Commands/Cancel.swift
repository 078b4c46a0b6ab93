import FlashSaleCore

enum CancelCommand {
    static let force = OptionSpec("--force", "cancel a confirmed booking too, returning its item to stock")

    static let spec = CommandSpec(
        "cancel", arguments: "SALE BOOKING", options: [ConfirmCommand.user, force],
        summary: "give a held item back to stock (held -> cancelled)",
        details: "Confirmed: exit 4 unless --force. Already cancelled or expired: exit 0, unchanged."
    ) { invocation, context in
        let (id, sale, owner) = (try invocation.bookingID(), try invocation.requiredSaleID(),
                                 try invocation.user(option: ConfirmCommand.user))
        let booking = try context.engine().cancel(id, in: sale, user: owner, force: invocation.flag(force), clock: context.now())
        context.output.success(Render.bookingStatus(booking))
    }
}
