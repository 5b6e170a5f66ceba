extension TaskID {
    /// A task id derived from `name`: the same name always gives the same id, so a producer that may submit the
    /// same logical task twice (a periodic tick published again after its leader died) names one task, and the
    /// worker's claim runs it once.
    ///
    /// The id is a version 8 UUID in lowercase text. Its bits are two 64-bit FNV-1a hashes of `name`'s UTF-8
    /// bytes, the first with the standard offset basis `0xcbf29ce484222325`, the second with `0x84222325cbf29ce4`
    /// (both with prime `0x100000001b3`), high word first; then the version nibble is set to 8 and the variant bits
    /// to `10` as in ``make()``. Not a cryptographic hash: use it for names the producer controls.
    public static func derived(from name: String) -> String {
        var high: UInt64 = 0xcbf2_9ce4_8422_2325
        var low: UInt64 = 0x8422_2325_cbf2_9ce4
        for byte in name.utf8 {
            high = (high ^ UInt64(byte)) &* 0x100_0000_01b3
            low = (low ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        high = (high & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_8000  // version 8
        low = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000  // RFC 4122 variant
        func hex(_ value: UInt64, _ digits: Int) -> String {
            let text = String(value, radix: 16)
            return String(repeating: "0", count: max(0, digits - text.count)) + text
        }
        return hex(high >> 32, 8) + "-" + hex((high >> 16) & 0xFFFF, 4) + "-" + hex(high & 0xFFFF, 4) + "-"
            + hex(low >> 48, 4) + "-" + hex(low & 0xFFFF_FFFF_FFFF, 12)
    }
}
