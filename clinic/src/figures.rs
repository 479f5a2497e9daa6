//! The outcome figures: how many referrals of each program were phoned within the promise, late,
//! never reached, declined, called first or withdrawn, per ISO week: the questions pilots like
//! Stockholm's could never answer with numbers. Only the anonymous counters are read, and a cell
//! under [`SUPPRESS_BELOW`] (but above zero) is shown as suppressed, as official statistics do,
//! so a small week cannot point at a person.

use crate::storage::OutcomeCount;

/// Cells from 1 to this minus one are suppressed.
pub const SUPPRESS_BELOW: i64 = 5;

/// The outcome counters, in the order the figures show them.
pub const OUTCOMES: [&str; 6] = [
    "contacted_in_time",
    "contacted_late",
    "never_reached",
    "declined",
    "called_first",
    "withdrawn",
];

/// One cell of the figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// The count (0, or at least [`SUPPRESS_BELOW`]).
    Count(i64),
    /// 1 to 4: not shown.
    Suppressed,
}

impl Cell {
    fn of(n: i64) -> Cell {
        if n > 0 && n < SUPPRESS_BELOW {
            Cell::Suppressed
        } else {
            Cell::Count(n)
        }
    }

    /// As a table shows it: the number, or `<5`.
    pub fn text(self) -> String {
        match self {
            Cell::Count(n) => n.to_string(),
            Cell::Suppressed => format!("<{SUPPRESS_BELOW}"),
        }
    }
}

/// One program's week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The program.
    pub program_id: String,
    /// The ISO week (`2026-W49`).
    pub week: String,
    /// One cell per [`OUTCOMES`] entry, in that order.
    pub cells: [Cell; 6],
}

/// Whether a week is written as figures take it: `YYYY-Www`.
pub fn is_week(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 8
        && b[..4].iter().all(u8::is_ascii_digit)
        && &b[4..6] == b"-W"
        && b[6..].iter().all(u8::is_ascii_digit)
        && (1..=53).contains(&text[6..].parse::<u32>().unwrap_or(0))
}

/// The rows for a program (or all) between two weeks (inclusive, either open), by program and
/// week, with small cells suppressed.
pub fn rows(
    counts: &[OutcomeCount],
    program: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    let mut raw: Vec<((String, String), [i64; 6])> = Vec::new();
    for c in counts {
        let wanted = program.is_none_or(|p| p == c.program_id)
            && from.is_none_or(|f| c.week.as_str() >= f)
            && to.is_none_or(|t| c.week.as_str() <= t);
        let Some(i) = OUTCOMES.iter().position(|o| *o == c.outcome) else {
            continue;
        };
        if !wanted {
            continue;
        }
        let key = (c.program_id.clone(), c.week.clone());
        match raw.iter_mut().find(|(k, _)| *k == key) {
            Some((_, cells)) => cells[i] += c.count,
            None => {
                let mut cells = [0; 6];
                cells[i] = c.count;
                raw.push((key, cells));
            }
        }
    }
    raw.sort();
    for ((program_id, week), cells) in raw {
        rows.push(Row {
            program_id,
            week,
            cells: cells.map(Cell::of),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(program: &str, week: &str, outcome: &str, n: i64) -> OutcomeCount {
        OutcomeCount {
            program_id: program.into(),
            week: week.into(),
            outcome: outcome.into(),
            count: n,
        }
    }

    #[test]
    fn cells_from_one_to_four_are_suppressed_and_the_rest_shown() {
        let counts = vec![
            count("lots-for-livet", "2026-W49", "contacted_in_time", 12),
            count("lots-for-livet", "2026-W49", "contacted_late", 4),
            count("lots-for-livet", "2026-W49", "withdrawn", 1),
            count("lots-for-livet", "2026-W49", "declined", 5),
            count("snackan-gislaved", "2026-W49", "never_reached", 3),
            count("lots-for-livet", "2026-W50", "contacted_in_time", 7),
        ];
        let rows = rows(&counts, None, None, None);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0].cells,
            [
                Cell::Count(12),
                Cell::Suppressed,
                Cell::Count(0),
                Cell::Count(5),
                Cell::Count(0),
                Cell::Suppressed
            ]
        );
        assert_eq!(rows[0].cells[1].text(), "<5");
        assert_eq!(
            (rows[1].week.as_str(), rows[1].cells[0]),
            ("2026-W50", Cell::Count(7))
        );
        assert_eq!(rows[2].cells[2], Cell::Suppressed);
        // Filters: one program, a range of weeks.
        let only = super::rows(
            &counts,
            Some("lots-for-livet"),
            Some("2026-W50"),
            Some("2026-W52"),
        );
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].week, "2026-W50");
    }

    #[test]
    fn weeks_are_written_as_iso_weeks() {
        assert!(is_week("2026-W49") && is_week("2027-W01") && is_week("2026-W53"));
        for bad in [
            "2026-49", "2026-W00", "2026-W54", "26-W49", "2026-w49", "2026-W4",
        ] {
            assert!(!is_week(bad), "{bad}");
        }
    }
}
