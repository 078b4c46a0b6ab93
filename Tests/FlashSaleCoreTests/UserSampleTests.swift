import Testing
@testable import FlashSaleCore

@Suite struct UserSampleTests {
    private func sample(_ users: some Sequence<String>) -> UserSample {
        var sample = UserSample()
        for user in users { sample.insert(user) }
        return sample
    }

    @Test func upToSixtyFourUsersAreCountedExactly() {
        #expect(UserSample().count == (0, false))
        #expect(sample(["a", "a", "a"]).count == (1, false))
        for n in [2, 5, 6, 63, 64] {
            #expect(sample((1...n).map { "farm\($0)" }).count == (n, false))
        }
    }

    @Test func pastSixtyFourTheCountIsAnEstimateOfAtLeastSixtyFive() {
        let crowd = sample((1...10_000).map { "buyer\($0)" })
        let (users, isEstimate) = crowd.count
        #expect(isEstimate)
        // A bottom-64 estimate is within about ±25% (1/√62 is one standard error, 13%).
        #expect(users > 7_000 && users < 13_000, "\(users)")
        #expect(sample((1...65).map { "u\($0)" }).count.users >= 65)
        #expect(sample((1...65).map { "u\($0)" }).count.isEstimate)
        // A stored column that is no sample (hashes crowded at the bottom) counts a
        // billion at most, and does not overflow.
        let crowded = UserSample(json: "[" + (0..<65).map { String(Int64.min + Int64($0)) }.joined(separator: ",") + "]")
        #expect(crowded.count == (1_000_000_000, true))
    }

    /// Samples add up as one sample of all the users would: in any order, whatever the
    /// split, which is what lets counters written by many processes be added.
    @Test func aUnionIsTheSampleOfAllTheUsers() {
        let users = (1...300).map { "u\($0)" }
        var halves = sample(users[..<150])
        halves.formUnion(sample(users[150...]))
        #expect(halves == sample(users.reversed()))
        var small = sample(["a"])
        small.formUnion(sample(["b", "a"]))
        #expect(small == sample(["a", "b"]))
    }

    @Test func theStoredArrayReadsBackInEitherServersSpelling() {
        let users = sample((1...100).map { "u\($0)" })
        #expect(UserSample(json: users.json) == users)
        #expect(UserSample(json: users.json?.split(separator: ",").joined(separator: ", ")) == users)
        #expect(UserSample().json == nil)
        #expect(UserSample(json: nil).isEmpty)
        #expect(sample(["x"]).json == "[\(UserSample.hash(of: "x"))]")
        // The extremes of 64 bits, and what does not fit or is no number, left out.
        #expect(UserSample(json: "[-9223372036854775808, 9223372036854775807]").json == "[-9223372036854775808,9223372036854775807]")
        #expect(UserSample(json: "[9223372036854775808,-9223372036854775809,99999999999999999999999,-,\"x\",7]").json == "[7]")
    }

    /// The same name hashes the same in every process: stored samples are compared across
    /// processes, and a change here would make old counters count their users twice.
    @Test func theHashIsFixed() {
        // As an independent implementation (Python) computes it: a name of under 8 bytes,
        // one of several words, and none.
        #expect(UserSample.hash(of: "alice") == 3_016_862_501_683_063_438)
        #expect(UserSample.hash(of: "a-user-name-longer-than-8") == 4_651_429_866_946_057_281)
        #expect(UserSample.hash(of: "") == -2_152_535_657_050_944_081)
        #expect(UserSample.hash(of: "caf\u{E9}") != UserSample.hash(of: "cafe\u{301}"))
    }
}
