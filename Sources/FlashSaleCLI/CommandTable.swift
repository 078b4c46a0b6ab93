/// Every command, in the order help lists them.
enum CommandTable {
    static let all: [CommandSpec] = [
        InitCommand.spec,
        CreateSaleCommand.spec,
        SeedInventoryCommand.spec,
        OperatorCommands.pause,
        OperatorCommands.resume,
        OperatorCommands.close,
        BookCommand.spec,
        ConfirmCommand.spec,
        CancelCommand.spec,
        SweepCommand.spec,
        SubmitCommand.spec,
        ProcessCommand.spec,
        RequestCommand.spec,
        StatusCommand.spec,
        SalesCommand.spec,
        BookingsCommand.spec,
        BookingCommand.spec,
        VerifyCommand.spec,
        BlockCommands.block,
        BlockCommands.unblock,
        BlockCommands.blocks,
        HelpCommand.spec,
    ]
}
