//! Deserializing checked strings. The check runs inside the value's own deserializer, so a
//! bad value is reported at its own line and column, even inside an array.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A value read from a TOML string through `T::from_str`.
struct Leaf<T>(T);

impl<'de, T> Deserialize<'de> for Leaf<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Leaf<T>, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<T> Visitor<'_> for V<T>
        where
            T: FromStr,
            T::Err: fmt::Display,
        {
            type Value = Leaf<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Leaf<T>, E> {
                T::from_str(s).map(Leaf).map_err(E::custom)
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// One checked string.
pub(crate) fn leaf<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    Leaf::deserialize(d).map(|l| l.0)
}

/// An optional checked string.
pub(crate) fn opt_leaf<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    Option::<Leaf<T>>::deserialize(d).map(|o| o.map(|l| l.0))
}

/// A list of checked strings.
pub(crate) fn leaves<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    Vec::<Leaf<T>>::deserialize(d).map(|v| v.into_iter().map(|l| l.0).collect())
}

/// An optional list of checked strings.
pub(crate) fn opt_leaves<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    Option::<Vec<Leaf<T>>>::deserialize(d).map(|o| o.map(|v| v.into_iter().map(|l| l.0).collect()))
}

/// A file mode: an integer (write it `0o755`) or a string of octal digits (`"0755"`).
pub(crate) fn opt_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    struct Mode(u32);
    impl<'de> Deserialize<'de> for Mode {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Mode;

                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a file mode such as 0o755 or \"0755\"")
                }

                fn visit_i64<E: de::Error>(self, n: i64) -> Result<Mode, E> {
                    const HINT: &str = "hint: write it in octal, for example `mode = 0o755`";
                    let out_of_range = || E::custom(format!("file mode {n} is out of range\n{HINT}"));
                    u32::try_from(n).ok().filter(|&m| m <= 0o7777).map(Mode).ok_or_else(out_of_range)
                }

                fn visit_u64<E: de::Error>(self, n: u64) -> Result<Mode, E> {
                    self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
                }

                fn visit_str<E: de::Error>(self, s: &str) -> Result<Mode, E> {
                    let digits = s.strip_prefix("0o").unwrap_or(s);
                    let ok =
                        (1..=4).contains(&digits.len()) && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
                    match u32::from_str_radix(digits, 8) {
                        Ok(m) if ok => Ok(Mode(m)),
                        _ => Err(E::custom(format!(
                            "bad file mode `{s}`\nhint: write octal permission bits, for example \"0755\""
                        ))),
                    }
                }
            }
            d.deserialize_any(V)
        }
    }
    Option::<Mode>::deserialize(d).map(|o| o.map(|m| m.0))
}

/// A map of string keys to checked strings.
pub(crate) fn leaf_map<'de, D, T>(d: D) -> Result<std::collections::BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    std::collections::BTreeMap::<String, Leaf<T>>::deserialize(d)
        .map(|m| m.into_iter().map(|(k, v)| (k, v.0)).collect())
}
