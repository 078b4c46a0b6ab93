extension String {
    /// A count and its noun, singular for one: `counted(1, "item")` is "1 item",
    /// `counted(2, "item")` "2 items".
    public static func counted(_ count: some BinaryInteger, _ noun: String) -> String {
        "\(count) \(noun)\(count == 1 ? "" : "s")"
    }
}
