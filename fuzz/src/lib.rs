//! Helpers the fuzz targets share: turning libFuzzer's bytes into the shapes the
//! parsers take (an argument vector, a selector byte and a text).

/// The bytes as an argument vector: NUL separates the arguments, as in
/// `/proc/PID/cmdline`; each argument is read as UTF-8 with replacement, as the
/// runtime wrapper reads its own arguments.
pub fn args(data: &[u8]) -> Vec<String> {
    if data.is_empty() {
        return Vec::new();
    }
    data.split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The first byte (which variant of the call to make) and the rest as text, when the
/// rest is UTF-8.
pub fn selector_and_text(data: &[u8]) -> Option<(u8, &str)> {
    let (&sel, rest) = data.split_first()?;
    Some((sel, std::str::from_utf8(rest).ok()?))
}
