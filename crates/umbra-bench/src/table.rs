//! The one table `umbra-bench` prints: rows grouped by section, each with
//! its figure and what bounds it (the bound measured in the same run, and
//! the ratio to it).

use std::fmt::Write as _;

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Section: `crypto`, `rpc`, `onion`, `e2e`, `memory`.
    pub section: &'static str,
    /// What was measured.
    pub what: String,
    /// The figure, formatted with its unit.
    pub value: String,
    /// The bound it is compared with and the ratio, or a note.
    pub bound: String,
}

impl Row {
    /// A row.
    pub fn new(
        section: &'static str,
        what: impl Into<String>,
        value: impl Into<String>,
        bound: impl Into<String>,
    ) -> Row {
        Row {
            section,
            what: what.into(),
            value: value.into(),
            bound: bound.into(),
        }
    }
}

/// Formats `x` with thousands separators and `decimals` decimals.
pub fn num(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let s = format!("{:.*}", decimals, x.abs());
    let (int, frac) = s
        .split_once('.')
        .map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    if x < 0.0 { format!("-{out}") } else { out }
}

/// `p50 X ms, p99 Y ms` of `lat` with `decimals` decimals.
pub fn p50_p99(lat: &mut crate::measure::Latencies, decimals: usize) -> String {
    format!(
        "p50 {} ms, p99 {} ms",
        num(lat.pct_ms(0.5), decimals),
        num(lat.pct_ms(0.99), decimals)
    )
}

/// Renders `rows` as an aligned text table (Markdown-compatible pipes).
pub fn render(rows: &[Row]) -> String {
    let head = ["section", "measurement", "figure", "bound / ratio"];
    let mut w = head.map(str::len);
    for r in rows {
        w[0] = w[0].max(r.section.len());
        w[1] = w[1].max(r.what.chars().count());
        w[2] = w[2].max(r.value.chars().count());
        w[3] = w[3].max(r.bound.chars().count());
    }
    let mut out = String::new();
    let line = |out: &mut String, c: [&str; 4]| {
        let pad = |s: &str, n: usize| format!("{s}{}", " ".repeat(n - s.chars().count()));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            pad(c[0], w[0]),
            pad(c[1], w[1]),
            pad(c[2], w[2]),
            pad(c[3], w[3])
        );
    };
    line(&mut out, head);
    let _ = writeln!(
        out,
        "|{}|{}|{}|{}|",
        "-".repeat(w[0] + 2),
        "-".repeat(w[1] + 2),
        "-".repeat(w[2] + 2),
        "-".repeat(w[3] + 2)
    );
    for r in rows {
        line(&mut out, [r.section, &r.what, &r.value, &r.bound]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_separators() {
        assert_eq!(num(1234567.891, 1), "1,234,567.9");
        assert_eq!(num(999.0, 0), "999");
        assert_eq!(num(-1000.0, 0), "-1,000");
        assert_eq!(num(0.25, 2), "0.25");
    }

    #[test]
    fn rows_align() {
        let t = render(&[
            Row::new("crypto", "X25519", "40.0 µs", "—"),
            Row::new("rpc", "store", "10,000 req/s", "0.5 of noop"),
        ]);
        let widths: Vec<usize> = t.lines().map(|l| l.chars().count()).collect();
        assert!(widths.windows(2).all(|p| p[0] == p[1]), "{t}");
        assert_eq!(t.lines().count(), 4);
    }
}
