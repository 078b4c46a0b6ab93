import CSQLite
import FlashSaleCore

/// `users_added(stored, added)`: the `users` of a counter and of what is added to it, as
/// `UserSample.formUnion` adds them (the smallest hashes of both), for the counters' upsert.
/// A function of the connection: the same in SQL (json_each, a UNION and json_group_array)
/// made each `book`'s statement cost 10% more instructions to prepare than all the rest of
/// its decision (callgrind). Deterministic, and direct only: no schema object can use it.
enum UsersAdded {
    static func register(on handle: OpaquePointer) -> Int32 {
        sqlite3_create_function_v2(
            handle, "users_added", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, nil,
            { context, _, arguments in
                guard let stored = arguments?[0], let added = arguments?[1] else { return }
                // Either alone, or the same twice (one user again from the same address): as it is.
                guard sqlite3_value_type(stored) != SQLITE_NULL else { return sqlite3_result_value(context, added) }
                guard sqlite3_value_type(added) != SQLITE_NULL, !UsersAdded.equalTexts(stored, added) else {
                    return sqlite3_result_value(context, stored)
                }
                var users = UserSample(json: SQLFunctionValues.text(of: stored))
                users.formUnion(UserSample(json: SQLFunctionValues.text(of: added)))
                SQLFunctionValues.result(users.json ?? "[]", of: context)
            }, nil, nil, nil)
    }

    private static func equalTexts(_ a: OpaquePointer, _ b: OpaquePointer) -> Bool {
        guard let first = sqlite3_value_text(a), let second = sqlite3_value_text(b) else { return false }
        let count = sqlite3_value_bytes(a)
        return count == sqlite3_value_bytes(b) && UnsafeRawBufferPointer(start: first, count: Int(count))
            .elementsEqual(UnsafeRawBufferPointer(start: second, count: Int(count)))
    }
}
