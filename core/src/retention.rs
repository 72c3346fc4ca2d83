//! Retention policy: the manifest's `[retention]` section, ages such as `30d`, and which
//! commits of one ref's history a policy keeps. Pure logic; `ops::prune` applies it.

use serde::Deserialize;
use toml::Spanned;

/// `[retention]` as written in the manifest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RetentionSection {
    /// Keep the newest N commits of each published ref.
    #[serde(default)]
    pub keep: Option<Spanned<i64>>,
    /// Keep the commits younger than this age (`30d`, `12h`, `2w`).
    #[serde(default)]
    pub keep_younger_than: Option<Spanned<String>>,
}

/// A checked policy. A commit is kept if EITHER rule keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    pub keep: Option<usize>,
    /// Maximum age in seconds.
    pub younger_than: Option<u64>,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.keep.is_none() && self.younger_than.is_none()
    }

    /// How many of `timestamps` (newest first, one ref's history) the policy keeps: always
    /// a prefix, since history is walked from the head.
    pub fn kept(&self, timestamps: &[u64], now: u64) -> usize {
        let by_count = self.keep.unwrap_or(0).min(timestamps.len());
        let by_age = match self.younger_than {
            Some(age) => timestamps
                .iter()
                .take_while(|t| now.saturating_sub(**t) < age)
                .count(),
            None => 0,
        };
        by_count.max(by_age)
    }
}

/// Parse `30d`: a whole number followed by one unit, s m h d or w. Returns seconds.
pub fn parse_age(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not an age: expected a number and a unit"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        "" => return Err(format!("`{text}` has no unit")),
        other => return Err(format!("`{text}`: unknown unit `{other}`")),
    };
    if n == 0 {
        return Err(format!("`{text}` keeps nothing: the age must be above 0"));
    }
    n.checked_mul(scale)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// An age in words for messages: the largest unit that fits.
pub fn describe_age(secs: u64) -> String {
    for (unit, scale) in [("d", 86400), ("h", 3600), ("m", 60)] {
        if secs >= scale {
            return format!("{}{unit}", secs / scale);
        }
    }
    format!("{secs}s")
}

pub const AGE_HINT: &str = "write a number and a unit: s, m, h, d or w (e.g. \"30d\")";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_with_units() {
        assert_eq!(parse_age("30d"), Ok(30 * 86400));
        assert_eq!(parse_age("2w"), Ok(14 * 86400));
        assert_eq!(parse_age("90s"), Ok(90));
        assert!(parse_age("30").is_err());
        assert!(parse_age("30y").is_err());
        assert!(parse_age("d").is_err());
        assert!(parse_age("0h").is_err());
    }

    #[test]
    fn either_rule_keeps() {
        let now = 1000;
        let ts = [990, 900, 500, 100];
        let count = Policy {
            keep: Some(2),
            younger_than: None,
        };
        assert_eq!(count.kept(&ts, now), 2);
        let age = Policy {
            keep: None,
            younger_than: Some(600),
        };
        assert_eq!(age.kept(&ts, now), 3);
        let both = Policy {
            keep: Some(1),
            younger_than: Some(50),
        };
        assert_eq!(both.kept(&ts, now), 1);
        let none = Policy {
            keep: None,
            younger_than: Some(5),
        };
        assert_eq!(none.kept(&ts, now), 0);
    }
}
