import Foundation
import Testing
import FlashSaleTestSupport

/// The queue's endpoints (submit, one request) and the public sale of http.md.
@Suite struct RequestEndpointTests {
    static let submit = "/booking-service/requests/s1"

    static func served() throws -> ServedDatabase {
        let served = try ServedDatabase()
        try served.createSale(inventory: 5)
        try served.start()
        return served
    }

    @Test func submitIs202WithTheRequestAndItsLocationAndTheSameKeyAgainIs200() async throws {
        let served = try Self.served()
        let queued = try await served.send(.POST, Self.submit, user: "alice", body: #"{"key": "r1"}"#)
        #expect(queued.status == 202, "\(queued.body)")
        let id = try #require(queued.object["id"] as? Int)
        #expect(queued[field: "status"] == "queued")
        #expect(queued.object["position"] as? Int == 1)
        #expect(queued[header: "Location"] == "/booking-service/requests/\(id)")
        let second = try await served.send(.POST, Self.submit, user: "bob")
        #expect(second.status == 202)
        #expect(second.object["position"] as? Int == 2)

        let again = try await served.send(.POST, Self.submit, user: "alice", body: #"{"key": "r1"}"#)
        #expect(again.status == 200)
        #expect(again.body == queued.body)
        #expect(again[header: "Location"] == "/booking-service/requests/\(id)")
        let theft = try await served.send(.POST, Self.submit, user: "bob", body: #"{"key": "r1"}"#)
        #expect(theft.status == 409)
        #expect(theft.errorCode == "conflict")

        let twin = try served.flashsale(["request", String(id), "--json"])
        #expect(twin.stdout.contains(#""user":"alice""#) && twin.stdout.contains(#""status":"queued""#), "\(twin.stdout)")
    }

    @Test func aRequestIsTheUsersOwnByItsIntegerIdAndAnythingElseIs404() async throws {
        let served = try Self.served()
        let queued = try await served.send(.POST, Self.submit, user: "alice")
        let id = try #require(queued.object["id"] as? Int)

        let own = try await served.send(.GET, "/booking-service/requests/\(id)", user: "alice")
        #expect(own.status == 200)
        #expect(own.body == queued.body)

        // Another user's is exactly a request that does not exist, but for the id.
        let others = try await served.send(.GET, "/booking-service/requests/\(id)", user: "bob")
        let nobodys = try await served.send(.GET, "/booking-service/requests/\(id + 1000)", user: "bob")
        #expect(others.status == 404)
        #expect(others.errorCode == "not_found")
        #expect(others.body.replacingOccurrences(of: "\(id)", with: "ID") == nobodys.body.replacingOccurrences(of: "\(id + 1000)", with: "ID"))

        for notAnInteger in ["abc", "1.0", "-1", "0", "+1", "%201", "1%00", "99999999999999999999999", "1e3", "%2F1"] {
            let answer = try await served.send(.GET, "/booking-service/requests/\(notAnInteger)", user: "alice")
            #expect(answer.status == 404, "\(notAnInteger): \(answer.status) \(answer.body)")
            #expect(answer.errorCode == "not_found", "\(notAnInteger)")
        }
    }

    @Test func thePublicSaleIsItsSixFieldsCacheableWithoutCredentials() async throws {
        let served = try Self.served()
        _ = try await served.send(.POST, "/booking-service/book-item/s1", user: "alice")
        let sale = try await served.send(.GET, "/booking-service/sales/s1")
        #expect(sale.status == 200, "\(sale.body)")
        #expect(Set(sale.object.keys) == ["id", "name", "state", "available", "starts_at", "ends_at"])
        #expect(sale[field: "id"] == "s1")
        #expect(sale[field: "state"] == "open")
        #expect(sale.object["available"] as? Int == 4)
        #expect(sale.object["ends_at"] is NSNull)
        #expect(sale[header: "Cache-Control"] == "public, max-age=1")
        #expect(sale[header: "Content-Type"] == "application/json")

        let unknown = try await served.send(.GET, "/booking-service/sales/s9")
        #expect(unknown.status == 404)
        #expect(unknown.errorCode == "not_found")
        #expect(unknown[header: "Cache-Control"] == "no-store")
    }
}
