import CLibFuzzer
import Glibc

/// Hands the process to libFuzzer, which calls `test` once per input, with the usual
/// libFuzzer command line (`-runs=N CORPUS...`).
public func runFuzzer(_ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, test))
}
