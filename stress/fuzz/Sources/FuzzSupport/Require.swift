/// Stops the run when a property fails. libFuzzer treats the trap like any crash: it prints
/// the message and saves the input as `crash-<sha1>`, which is what a finding must be.
public func require(_ condition: Bool, _ message: @autoclosure () -> String,
                    file: StaticString = #fileID, line: UInt = #line) {
    if !condition { fatalError("property violated: \(message())", file: file, line: line) }
}
