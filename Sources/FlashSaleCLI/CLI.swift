import Glibc
import FlashSaleCore

/// The command line, from words to an exit status. Only here are errors printed and
/// turned into exit codes.
public enum CLI {
    /// The process's own arguments, environment and standard streams.
    /// `linked`: by default, hand what needs the server's packages to the server beside
    /// this binary; the server passes its own.
    package static func main(linked: Linked = .handOff) -> Int32 {
        // A write past `ulimit -f` then fails with EFBIG, which SQLite reports and the
        // command turns into exit 74 with nothing written, instead of a kill by SIGXFSZ.
        signal(SIGXFSZ, SIG_IGN)
        // Every file flashsale makes holds buyers' data, SQLite's temporary files (sorts)
        // included, which it creates with mode 0644 less the umask. (The database it makes
        // with 0600 itself, and SQLite gives the -wal and -shm the database's own mode.)
        umask(0o077)
        RehearsalChildren.stopWithRehearsal()
        // A static binary's runtime finds the command line through /proc/self/maps, which
        // it cannot open with no descriptor free (`ulimit -n 3`): it then has no arguments
        // at all, not even the program's name (found by probing: a crash, SIGILL, and
        // nothing said).
        guard Swift.CommandLine.argc > 0 else {
            let failure = FlashSaleError.io("cannot read the command line: no file descriptor is free? (raise ulimit -n)")
            let stderr = FileSink(descriptor: 2)
            stderr.write("flashsale: \(failure.message)\n")
            stderr.flush()
            return failure.exitCode
        }
        let raw = (1..<Int(Swift.CommandLine.argc)).map { index in
            Swift.CommandLine.unsafeArgv[index].map { Array(UnsafeBufferPointer(start: $0, count: strlen($0))).map { UInt8(bitPattern: $0) } } ?? []
        }
        var environment: [String: [UInt8]] = [:]
        for name in ["FLASHSALE_DB", "FLASHSALE_NOW", "TMPDIR"] + DatabaseURL.environmentVariables + DatabaseURL.unfollowedVariables
            + DatabaseURL.homeFileVariables {
            if let value = getenv(name) {
                environment[name] = Array(UnsafeBufferPointer(start: value, count: strlen(value))).map { UInt8(bitPattern: $0) }
            }
        }
        // Asked before anything runs: SwiftNIO (flashsale-serve) ignores SIGPIPE for its sockets.
        var pipeAction = sigaction()
        sigaction(SIGPIPE, nil, &pipeAction)
        let brokenPipeKills = pipeAction.__sigaction_handler.sa_handler == nil  // SIG_DFL
        // Asked before anything opens a file: SQLite puts /dev/null on a closed descriptor 0
        // rather than take it for the database, and `-` would then read as an empty input.
        let stdin: Int32 = fcntl(0, F_GETFD) == -1 ? -1 : 0
        keepOutputDescriptorsTaken()
        return run(rawArguments: raw, environment: environment, stdin: stdin,
                   stdout: FileSink(descriptor: 1), stderr: FileSink(descriptor: 2), linked: linked,
                   brokenPipeKills: brokenPipeKills)
    }

    /// A closed stdout or stderr gets /dev/null, read-only: a write to it then fails (EBADF,
    /// exit 74) rather than go to whatever the process opens next on that number. SQLite does
    /// the same for the files it opens, but flashsale-serve's event loop took descriptor 1
    /// first, and a write to its eventfd would succeed and lose the output (`>&-`).
    private static func keepOutputDescriptorsTaken() {
        for descriptor: Int32 in [1, 2] where fcntl(descriptor, F_GETFD) == -1 {
            // The lowest free descriptor: this one, or 0 when stdin is closed too, which is
            // left closed (`stdin` above).
            let null = open("/dev/null", O_RDONLY)
            guard null >= 0, null != descriptor else { continue }
            dup2(null, descriptor)
            close(null)
        }
    }

    /// Runs one command line. Arguments and environment arrive as bytes because they need
    /// not be UTF-8, and flashsale refuses what is not. `stdin` is the descriptor `-` reads
    /// (-1: closed).
    /// `linked` has no default: a caller in a process that must go on (a test runner) must
    /// never get the exec of `main`'s. `brokenPipeKills`: SIGPIPE's action was the default
    /// when the process started (`Output.checkWritten`); never in a test runner.
    static func run(rawArguments: [[UInt8]], environment rawEnvironment: [String: [UInt8]],
                    stdin: Int32, stdout: TextSink, stderr: TextSink, linked: Linked,
                    brokenPipeKills: Bool = false) -> Int32 {
        // Guessed before parsing, so that even a usage error prints JSON when asked to; the
        // parse then says for sure (`--key -- --json`: the first `--` is a value, not the
        // end of the options).
        let json = rawArguments.prefix { $0 != Array("--".utf8) }.contains(Array("--json".utf8))
        let quiet = rawArguments.prefix { $0 != Array("--".utf8) }.contains { $0 == Array("-q".utf8) || $0 == Array("--quiet".utf8) }
        var output = Output(json: json, quiet: quiet, stdout: stdout, stderr: stderr, brokenPipeKills: brokenPipeKills)
        defer {
            stdout.flush()
            stderr.flush()
        }
        do {
            let arguments = try rawArguments.enumerated().map { index, bytes throws(FlashSaleError) in
                guard let text = String(validating: bytes, as: UTF8.self) else {
                    throw FlashSaleError.usage("argument \(index + 1) is not valid UTF-8")
                }
                return text
            }
            let environment = Environment(rawEnvironment)
            let commandLine = try ParsedCommandLine.parse(arguments, commands: CommandTable.all)
            let parsed = (json: commandLine.globals.has(GlobalOptions.json.name), quiet: commandLine.globals.has(GlobalOptions.quiet.name))
            if parsed != (json, quiet) {
                output = Output(json: parsed.json, quiet: parsed.quiet, stdout: stdout, stderr: stderr, brokenPipeKills: brokenPipeKills)
            }
            switch commandLine.action {
            case .version:
                output.help(Help.version + "\n")
                try output.finish()
            case .help(let command):
                output.help(command.map(Help.command) ?? Help.general())
                try output.finish()
            case .run(let invocation):
                let context = try Context(globals: commandLine.globals, environment: environment, standardInput: stdin,
                                          output: output, createsDatabase: invocation.command.createsDatabase,
                                          namesDatabaseServer: invocation.command.namesDatabaseServer,
                                          usesDatabase: invocation.command.usesDatabase, linked: linked)
                try invocation.command.run(invocation, context)
                try output.finish(lastingWork: context.lastingWork)
            }
            return 0
        } catch {
            let failure = ExitStatus.error(for: error)
            output.failure(failure, alreadyLogged: error is LoggedFailure)
            return failure.exitCode
        }
    }
}
