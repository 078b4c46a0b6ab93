import FlashSaleCore

/// `pause`, `resume` and `close`: the operator's switches, one implementation.
enum OperatorCommands {
    static let pause = spec(.pause, summary: "stop new holds; confirms and cancels still work")
    static let resume = spec(.resume, summary: "take new holds again after pause")
    static let close = spec(.close, summary: "end the sale for good; held items may still be confirmed until they expire")

    private static func spec(_ command: OperatorCommand, summary: String) -> CommandSpec {
        // Found by probing: pause and resume did not say that a closed or ended sale refuses them.
        let details = "Already in that state: exit 0, unchanged."
            + (command == .close ? " Works in every state." : " A closed or ended sale: exit 4.")
        return CommandSpec(command.rawValue, arguments: "SALE", summary: summary, details: details) { invocation, context in
            let sale = try invocation.requiredSaleID()
            let status = try context.engine().change(sale, by: command, clock: context.now())
            context.output.success(Render.sale(status))
        }
    }
}
