import HTTPTypes

extension HTTPFields {
    /// The values of the fields named `name` joined with ", ", as `self[name]` joins them
    /// (RFC 9110, 5.3; not for `Cookie`, whose values it joins with "; "), or nil when
    /// there is none. That subscript joins them through the standard library's generic
    /// `joined(separator:)`, unspecialized across the module boundary: about 4,000
    /// instructions a call, and a booking asked four (callgrind).
    func value(_ name: HTTPField.Name) -> String? {
        var joined: String?
        for field in self where field.name == name {
            joined = joined.map { $0 + ", " + field.value } ?? field.value
        }
        return joined
    }
}
