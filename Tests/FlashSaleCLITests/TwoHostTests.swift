import Foundation
import Testing
@testable import FlashSalePostgres
import FlashSaleTestSupport

/// Two "hosts": `book` processes in two network namespaces, each reaching the server over
/// its own veth link, book one sale at once, with users shared between the hosts. The sale
/// gives exactly its stock, no user gets more than the limit, and every invariant holds:
/// the rules live in the row locks of one server, not in a host.
// Serialized: both tests make the one bridge and its namespaces.
@Suite(.serialized) struct TwoHostTests {
    static let canMakeHosts = runningAsRoot && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
        && installed("pg_ctl", in: postgresBinaries) != nil

    @Test(.enabled(if: canMakeHosts, "needs root, iproute2's ip and PostgreSQL's server programs"))
    func booksFromTwoHostsGiveExactlyTheStock() throws {
        let hosts = try TwoHostNetwork()
        defer { withExtendedLifetime(hosts) {} }
        let cluster = try OwnCluster(listen: TwoHostNetwork.server, subnet: TwoHostNetwork.subnet)
        defer { withExtendedLifetime(cluster) {} }
        let box = try Sandbox(.postgres, url: cluster.url(schema: TestPostgres.newSchema()))
        try #require(try box.run(["init"]).status == 0)
        try #require(try box.run(["create-sale", "s1", "--inventory", "30", "--per-user", "2"]).status == 0)
        // 2 hosts × 40 requests by 20 users: 80 asking, 40 within the limit, 30 in stock.
        let crowds = try hosts.namespaces.map { namespace in
            try box.startShell("""
                i=0; while [ $i -lt 40 ]; do
                  /usr/sbin/ip netns exec \(namespace) "$FLASHSALE" --db "$DB" book s1 u$((i % 20)); echo "exit $?" >&2
                  i=$((i + 1))
                done
                """)
        }
        var held: [String] = []
        for crowd in crowds {
            let result = crowd.result()
            let exits = result.stderr.split(separator: "\n").filter { $0.hasPrefix("exit ") }
            #expect(exits.count == 40)
            #expect(!exits.contains { ["exit 73", "exit 74", "exit 75"].contains($0) }, "\(result.stderr)")
            held += result.stdout.split(separator: "\n").map(String.init)
        }
        #expect(held.count == 30)
        let bookings = try box.spawn(["export", "s1", "--format", "ndjson"]).stdout.split(separator: "\n")
        #expect(bookings.count == 30)
        let users = bookings.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["user"] as? String
        }
        #expect(users.count == 30)
        #expect(Dictionary(grouping: users) { $0 }.values.allSatisfy { $0.count <= 2 })
        #expect(try box.spawn(["verify"]).status == 0)
    }

    /// A server that stops answering mid-command (its link cut, as a failover that takes
    /// its address away would leave it): TCP keepalive finds it gone, and the command exits
    /// 74 instead of waiting for ever, here on a row lock, with a busy timeout of 10 minutes.
    @Test(.enabled(if: canMakeHosts, "needs root, iproute2's ip and PostgreSQL's server programs"),
          .timeLimit(.minutes(3)))
    func aCommandWhoseServerStopsAnsweringEndsWith74() throws {
        let hosts = try TwoHostNetwork()
        defer { withExtendedLifetime(hosts) {} }
        let cluster = try OwnCluster(listen: TwoHostNetwork.server, subnet: TwoHostNetwork.subnet)
        defer { withExtendedLifetime(cluster) {} }
        let box = try Sandbox(.postgres, url: cluster.url(schema: TestPostgres.newSchema()))
        try #require(try box.run(["create-sale", "s1", "--inventory", "10"]).status == 0)
        let holder = try PostgresSession(location: PostgresLocation(url: box.database, environment: [:], operatingSystemUser: nil),
                                         busyTimeout: .seconds(600))
        try holder.execute("BEGIN")
        try holder.execute("SELECT id FROM sale WHERE id = 's1' FOR UPDATE")
        let host = hosts.namespaces[0]
        let waiting = try box.startShell(#"/usr/sbin/ip netns exec \#(host) "$FLASHSALE" --db "$DB" --busy-timeout 10m book s1 alice"#)
        #expect(waiting.waitUntil { ((try? holder.count("SELECT count(*) FROM pg_locks WHERE NOT granted")) ?? 0) > 0 })
        try hosts.cut(host)
        let ended = waiting.waitForExit(within: 120)
        _ = try? holder.execute("ROLLBACK")
        #expect(ended == .exit(74), "\(waiting.stderr)")
        #expect(isOneLine(waiting.stderr), "\(waiting.stderr)")
    }
}

/// A bridge on this host at `server`, and two namespaces on it, each through a veth pair of
/// its own: two machines on one LAN with the database server. Removed when let go, and
/// whatever a previous run left is removed first.
final class TwoHostNetwork {
    static let server = "10.231.0.1"
    static let subnet = "10.231.0.0/24"
    private static let bridge = "fsbr0"
    let namespaces = ["fshost2", "fshost3"]

    init() throws {
        tearDown()
        var script = """
            set -e
            ip link add \(Self.bridge) type bridge
            ip addr add \(Self.server)/24 dev \(Self.bridge)
            ip link set \(Self.bridge) up

            """
        for (index, namespace) in namespaces.enumerated() {
            script += """
                ip netns add \(namespace)
                ip link add \(namespace)v type veth peer name \(namespace)p
                ip link set \(namespace)p netns \(namespace)
                ip link set \(namespace)v master \(Self.bridge)
                ip link set \(namespace)v up
                ip -n \(namespace) addr add 10.231.0.\(index + 2)/24 dev \(namespace)p
                ip -n \(namespace) link set \(namespace)p up
                ip -n \(namespace) link set lo up

                """
        }
        do {
            try runTool("/bin/sh", ["-c", script], environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
        } catch {
            tearDown()
            throw error
        }
    }

    deinit {
        tearDown()
    }

    /// Takes `namespace`'s link down: what it sends is lost, nothing comes back.
    func cut(_ namespace: String) throws {
        try runTool("/usr/sbin/ip", ["link", "set", namespace + "v", "down"], environment: [:])
    }

    private func tearDown() {
        let script = namespaces.map { "ip netns del \($0); ip link del \($0)v" }.joined(separator: "; ")
            + "; ip link del \(Self.bridge); true"
        _ = try? runTool("/bin/sh", ["-c", script + " 2>/dev/null"], environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
    }
}
