//! The key layout: which column family a key lives in and which writer
//! owns it, both read off the key itself.
//!
//! A key is `[c<D>/][w<TT>.[x<OO>.]]k<NNNNNN>`:
//! - `c<D>/` routes the key to column family `D` (0 = `default`, 1..7 =
//!   `cf1`..`cf7`); keys without it go to `default`. The RocksDB adapter
//!   stores the whole key, prefix included, in that column family.
//! - `w<TT>.` puts the key in writer `TT`'s partition; `x<OO>.` after it
//!   marks a key that writer `OO` writes into `TT`'s partition (a
//!   cross-partition batch). Every key has exactly one writer, its owner,
//!   so the verifier can decide each writer's prefix on its own even though
//!   the writers' interleaving is unknown.
//!
//! With one column family and one writer no prefix is used at all, so
//! single-writer sequences are unchanged (`k000012`).

/// Most column families a layout uses (`c0/`..`c7/`).
pub const MAX_CFS: usize = 8;

/// Most concurrent writers (`w00.`..`w15.`).
pub const MAX_WRITERS: usize = 16;

/// RocksDB name of column family `cf`.
pub fn cf_name(cf: usize) -> String {
    if cf == 0 {
        "default".into()
    } else {
        format!("cf{cf}")
    }
}

/// Column family of `key` in a database with `cfs` column families.
pub fn cf_of(key: &[u8], cfs: usize) -> usize {
    match key {
        [b'c', d @ b'0'..=b'7', b'/', ..] if ((d - b'0') as usize) < cfs => (d - b'0') as usize,
        _ => 0,
    }
}

fn strip_cf(key: &[u8]) -> &[u8] {
    match key {
        [b'c', b'0'..=b'7', b'/', rest @ ..] => rest,
        _ => key,
    }
}

fn two_digits(tag: u8, b: &[u8]) -> Option<(usize, &[u8])> {
    match b {
        [t, a @ b'0'..=b'9', c @ b'0'..=b'9', b'.', rest @ ..] if *t == tag => {
            Some((((a - b'0') * 10 + (c - b'0')) as usize, rest))
        }
        _ => None,
    }
}

/// The writer that owns `key` (0 for keys without a writer tag).
pub fn owner_of(key: &[u8]) -> usize {
    match two_digits(b'w', strip_cf(key)) {
        None => 0,
        Some((part, rest)) => two_digits(b'x', rest).map_or(part, |(o, _)| o),
    }
}

/// How a generator lays out its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Column families (1 = only `default`, no prefix).
    pub cfs: u8,
    /// This generator's writer.
    pub writer: u8,
    /// Writers in all (1 = no writer tag).
    pub writers: u8,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            cfs: 1,
            writer: 0,
            writers: 1,
        }
    }
}

impl Layout {
    /// True when keys carry no prefix (the single-CF, single-writer case).
    pub fn is_plain(&self) -> bool {
        self.cfs <= 1 && self.writers <= 1
    }

    /// The prefix of keys in column family `cf` of writer `part`'s
    /// partition, written by `owner` (equal to `part` except in
    /// cross-partition writes).
    pub fn prefix(&self, cf: u8, part: u8, owner: u8) -> Vec<u8> {
        let mut p = Vec::with_capacity(12);
        if self.cfs > 1 {
            p.extend_from_slice(format!("c{cf}/").as_bytes());
        }
        if self.writers > 1 {
            p.extend_from_slice(format!("w{part:02}.").as_bytes());
            if owner != part {
                p.extend_from_slice(format!("x{owner:02}.").as_bytes());
            }
        }
        p
    }
}

/// Keys `k000000`..`k000007` of each writer's partition (in each column
/// family) are the ones other writers' transactions lock (`lock K`):
/// every write to them is published to the others (crash/contend.rs).
pub const LOCK_KEYS: usize = 8;

/// Slots of lockable keys per writer: [`LOCK_KEYS`] per column family.
pub const LOCK_SLOTS: usize = LOCK_KEYS * MAX_CFS;

/// `(owner, slot)` of a lockable key: `[c<D>/]w<TT>.k<N>` with `N` below
/// [`LOCK_KEYS`] and no cross-partition tag; `None` for any other key.
pub fn lock_slot(key: &[u8]) -> Option<(usize, usize)> {
    let cf = match key {
        [b'c', d @ b'0'..=b'7', b'/', ..] => (d - b'0') as usize,
        _ => 0,
    };
    let (owner, rest) = two_digits(b'w', strip_cf(key))?;
    let digits = rest.strip_prefix(b"k")?;
    if digits.len() != 6 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse::<usize>().ok()?;
    (n < LOCK_KEYS && owner < MAX_WRITERS).then_some((owner, cf * LOCK_KEYS + n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_low_keys_of_a_partition_are_lockable() {
        assert_eq!(lock_slot(b"w02.k000003"), Some((2, 3)));
        assert_eq!(lock_slot(b"c1/w00.k000007"), Some((0, LOCK_KEYS + 7)));
        assert_eq!(lock_slot(b"w02.k000008"), None);
        assert_eq!(lock_slot(b"w02.x01.k000003"), None, "cross-partition");
        assert_eq!(lock_slot(b"k000003"), None, "no writer tag");
        assert_eq!(lock_slot(b"w02.k00003"), None);
    }

    #[test]
    fn keys_route_to_their_column_family_and_owner() {
        let l = Layout {
            cfs: 4,
            writer: 3,
            writers: 8,
        };
        let mut k = l.prefix(2, 3, 3);
        k.extend_from_slice(b"k000012");
        assert_eq!(k, b"c2/w03.k000012");
        assert_eq!(cf_of(&k, 4), 2);
        assert_eq!(
            cf_of(&k, 2),
            0,
            "a CF the database does not have is default"
        );
        assert_eq!(owner_of(&k), 3);
        let mut x = l.prefix(1, 5, 3);
        x.extend_from_slice(b"k000001");
        assert_eq!(x, b"c1/w05.x03.k000001");
        assert_eq!(
            owner_of(&x),
            3,
            "a cross-partition key belongs to its writer"
        );
        assert_eq!(cf_of(b"k000001", 4), 0);
        assert_eq!(owner_of(b"k000001"), 0);
        assert!(Layout::default().prefix(0, 0, 0).is_empty());
    }
}
