//! Mutations of valid inputs. The choices come from an `arbitrary::Unstructured` over a
//! seeded byte stream: the same (seed, case) always gives the same input.

use arbitrary::{Arbitrary, Result, Unstructured};

/// Integers that break parsers: zero, one, the edges of each width, and a sign flip.
const INTERESTING: [u64; 12] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

/// Text that breaks number and line parsers.
pub const BAD_TOKENS: [&str; 14] = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e39",
    "-1e39",
    "1e400",
    "",
    " ",
    ",",
    "\u{0}",
    "ü",
    "99999999999999999999999999",
    "-0",
];

/// One random edit of `data`, or a few in a row (`1..=4`): bit flips, interesting
/// integers written over 1, 2, 4 or 8 bytes, random bytes inserted, ranges deleted or
/// duplicated, truncation, or a splice from `other` (another seed).
pub fn bytes(u: &mut Unstructured<'_>, data: &mut Vec<u8>, other: &[u8]) -> Result<()> {
    let edits = u.int_in_range(1..=4)?;
    for _ in 0..edits {
        byte_edit(u, data, other, 0..data.len())?;
    }
    Ok(())
}

/// One byte-level edit within `range` of `data` (positions chosen inside it).
pub fn byte_edit(
    u: &mut Unstructured<'_>,
    data: &mut Vec<u8>,
    other: &[u8],
    range: std::ops::Range<usize>,
) -> Result<()> {
    let end = range.end.min(data.len());
    let start = range.start.min(end);
    let pos = |u: &mut Unstructured<'_>| -> Result<usize> {
        if end > start {
            u.int_in_range(start..=end - 1)
        } else {
            Ok(start)
        }
    };
    match u.int_in_range(0..=8)? {
        0 if !data.is_empty() => {
            let p = pos(u)?.min(data.len() - 1);
            data[p] ^= 1 << u.int_in_range(0..=7)?;
        }
        1 => {
            let width = *u.choose(&[1usize, 2, 4, 8])?;
            let p = pos(u)?;
            let value = *u.choose(&INTERESTING)?;
            let value = if bool::arbitrary(u)? {
                value
            } else {
                value.wrapping_neg()
            };
            for (i, b) in value.to_le_bytes().iter().take(width).enumerate() {
                if let Some(d) = data.get_mut(p + i) {
                    *d = *b;
                }
            }
        }
        2 => {
            let p = pos(u)?.min(data.len());
            let n = u.int_in_range(1..=64)?;
            let fill: Vec<u8> = (0..n).map(|_| u8::arbitrary(u)).collect::<Result<_>>()?;
            data.splice(p..p, fill);
        }
        3 if !data.is_empty() => {
            let p = pos(u)?.min(data.len() - 1);
            let n = u.int_in_range(1..=256)?.min(data.len() - p);
            data.drain(p..p + n);
        }
        4 if !data.is_empty() => {
            let p = pos(u)?.min(data.len() - 1);
            let n = u.int_in_range(1..=256)?.min(data.len() - p);
            let copy = data[p..p + n].to_vec();
            let at = pos(u)?.min(data.len());
            data.splice(at..at, copy);
        }
        5 => {
            let keep = pos(u)?;
            data.truncate(keep);
        }
        6 if !other.is_empty() => {
            let from = u.int_in_range(0..=other.len() - 1)?;
            let n = u.int_in_range(1..=512)?.min(other.len() - from);
            let at = pos(u)?.min(data.len());
            let n_out = n.min(data.len() - at);
            data.splice(at..at + n_out, other[from..from + n].iter().copied());
        }
        7 if !data.is_empty() => {
            let p = pos(u)?.min(data.len() - 1);
            data[p] = *u.choose(&[0u8, 0xff, 0x7f, 0x80, b'"', b'{', b'}', b'\n', b','])?;
        }
        _ => {
            // Repeat a short range many times (runs that stress length fields and loops).
            if !data.is_empty() {
                let p = pos(u)?.min(data.len() - 1);
                let n = u.int_in_range(1..=8)?.min(data.len() - p);
                let times = u.int_in_range(2..=512)?;
                let piece = data[p..p + n].to_vec();
                let repeated: Vec<u8> = piece.iter().copied().cycle().take(n * times).collect();
                data.splice(p..p, repeated);
            }
        }
    }
    Ok(())
}

/// A JSON value mutated where it matters to a reader: a number made extreme, negative or
/// a string, a string made a number, huge or empty, a key removed, an array emptied or
/// nested, a value replaced by null. Applied `1..=3` times at random paths.
pub fn json(u: &mut Unstructured<'_>, v: &mut serde_json::Value) -> Result<()> {
    let edits = u.int_in_range(1..=3)?;
    for _ in 0..edits {
        json_edit(u, v, 0)?;
    }
    Ok(())
}

fn json_edit(u: &mut Unstructured<'_>, v: &mut serde_json::Value, depth: usize) -> Result<()> {
    use serde_json::{Value, json};
    // Go deeper with some probability while there is somewhere to go.
    let descend = depth < 6 && bool::arbitrary(u)?;
    match v {
        Value::Object(map) if descend && !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = u.choose(&keys)?.clone();
            if u.ratio(1, 6)? {
                map.remove(&key);
                return Ok(());
            }
            if let Some(child) = map.get_mut(&key) {
                return json_edit(u, child, depth + 1);
            }
        }
        Value::Array(items) if descend && !items.is_empty() => {
            let i = u.int_in_range(0..=items.len() - 1)?;
            return json_edit(u, &mut items[i], depth + 1);
        }
        _ => {}
    }
    // Half the time a value of the same type (which a typed reader takes further).
    if bool::arbitrary(u)? {
        match v {
            Value::Number(_) => {
                *v = json!(*u.choose(&[
                    f64::MAX,
                    -1e30,
                    0.0,
                    -0.0,
                    1e-45,
                    12345.678,
                    -1.0,
                    4.0e9,
                    f32::MAX as f64,
                ])?);
                return Ok(());
            }
            Value::String(_) => {
                *v = Value::String(match u.int_in_range(0..=5)? {
                    0 => String::new(),
                    1 => "/nonexistent/model.safetensors".into(),
                    2 => "/dev/zero".into(),
                    3 => "/tmp".into(),
                    4 => "ü\u{0}\n".repeat(u.int_in_range(1..=1000)?),
                    _ => u.choose(&BAD_TOKENS)?.to_string(),
                });
                return Ok(());
            }
            Value::Bool(b) => {
                *b = !*b;
                return Ok(());
            }
            _ => {}
        }
    }
    *v = match u.int_in_range(0..=9)? {
        0 => Value::Null,
        1 => json!(f64::MAX),
        2 => json!(-1),
        3 => json!(u64::MAX),
        4 => json!(1e300),
        5 => Value::String(u.choose(&BAD_TOKENS)?.to_string()),
        6 => Value::String("x".repeat(u.int_in_range(0..=100_000)?)),
        7 => json!([]),
        8 => json!({ "": [[[[0]]]] }),
        _ => json!(i64::arbitrary(u)?),
    };
    Ok(())
}
