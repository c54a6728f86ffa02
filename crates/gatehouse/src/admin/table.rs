//! The one output style of every `list` command: a header row, then one row per
//! entry, columns aligned with spaces, no quotes, times in UTC
//! (`2026-12-01 02:10:00Z`), and `-` for an empty value. `--json` is for machines.

use gatehouse_core::UnixTime;

/// Rows of text under a header, printed with aligned columns.
pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row, one cell per header column. Control characters (a line break in
    /// a client's name) are escaped so that every row stays one line.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        let cells = cells
            .into_iter()
            .map(|cell| match cell.as_str() {
                "" => "-".to_owned(),
                text if text.chars().any(char::is_control) => text
                    .chars()
                    .map(|c| {
                        if c.is_control() {
                            c.escape_debug().to_string()
                        } else {
                            c.to_string()
                        }
                    })
                    .collect(),
                _ => cell,
            })
            .collect();
        self.rows.push(cells);
    }

    /// The table as text: two spaces between columns, none after the last.
    pub(crate) fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        let mut text = String::new();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (at, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if at > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let pad = width.saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM:SSZ` in UTC.
pub(crate) fn utc_time(time: UnixTime) -> String {
    let (days, seconds) = (time.div_euclid(86_400), time.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01: Howard Hinnant's
/// `civil_from_days` ("chrono-Compatible Low-Level Date Algorithms").
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc_time(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(utc_time(1_796_090_999), "2026-12-01 02:09:59Z");
        assert_eq!(utc_time(-1), "1969-12-31 23:59:59Z");
    }

    #[test]
    fn columns_are_aligned_and_empty_cells_are_dashes() {
        let mut table = Table::new(&["ID", "NAME", "SCOPE"]);
        table.row(vec!["a".into(), "first client".into(), "read".into()]);
        table.row(vec!["longer-id".into(), "line\nbreak".into(), String::new()]);
        assert_eq!(
            table.render(),
            "ID         NAME          SCOPE\n\
             a          first client  read\n\
             longer-id  line\\nbreak   -\n"
        );
    }
}
