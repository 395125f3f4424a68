//! People in CSV: importing rows into the invite form, exporting the Users list.

use std::borrow::Cow;

/// One person from an imported file, as written there (validated later, like typed rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedRow {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("The file is empty.")]
    Empty,
    #[error(
        "The file is not UTF-8 text. Save it from your spreadsheet as “CSV UTF-8” and import it again."
    )]
    NotUtf8,
    #[error(
        "The first line must name the columns; this file has no {0}. Use a header row with \
         First name, Last name and Email address (comma- or semicolon-separated)."
    )]
    MissingColumns(String),
    #[error(
        "One import can hold at most {max} people; this file has {found}. Split it, then import each part."
    )]
    TooManyRows { max: usize, found: usize },
    #[error("The file could not be read as CSV: {0}")]
    Unreadable(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Column {
    First,
    Last,
    Email,
}

/// What a header cell names: "First name", "first_name", "Given name", "E-mail"...
fn column(header: &str) -> Option<Column> {
    let key: String = header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    match key.as_str() {
        "firstname" | "first" | "givenname" | "forename" => Some(Column::First),
        "lastname" | "last" | "surname" | "familyname" => Some(Column::Last),
        "email" | "emailaddress" | "mail" | "emailadress" => Some(Column::Email),
        _ => None,
    }
}

/// Reads a CSV file with a header row, comma- or semicolon-separated, UTF-8 with or
/// without a byte-order mark. Rows with nothing in them are skipped.
pub fn parse(bytes: &[u8], max_rows: usize) -> Result<Vec<ImportedRow>, ImportError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ImportError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let header_line = text
        .lines()
        .find(|line| !line.trim().is_empty())
        .ok_or(ImportError::Empty)?;
    // The separator is the one the header uses more of (Excel writes ';' in many locales).
    let delimiter = if header_line.matches(';').count() > header_line.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ImportError::Unreadable(e.to_string()))?
        .clone();
    let position = |wanted: Column| headers.iter().position(|h| column(h) == Some(wanted));
    let (first, last, email) = (
        position(Column::First),
        position(Column::Last),
        position(Column::Email),
    );
    let missing: Vec<&str> = [
        (first, "First name column"),
        (last, "Last name column"),
        (email, "Email address column"),
    ]
    .into_iter()
    .filter(|(found, _)| found.is_none())
    .map(|(_, name)| name)
    .collect();
    let (Some(first), Some(last), Some(email)) = (first, last, email) else {
        return Err(ImportError::MissingColumns(missing.join(" and ")));
    };
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| ImportError::Unreadable(e.to_string()))?;
        let cell = |index: usize| record.get(index).unwrap_or_default().to_owned();
        let row = ImportedRow {
            first_name: cell(first),
            last_name: cell(last),
            email: cell(email),
        };
        if row.first_name.is_empty() && row.last_name.is_empty() && row.email.is_empty() {
            continue;
        }
        rows.push(row);
        if rows.len() > max_rows {
            // Count the rest without keeping them, to say how many there are.
            let found = rows.len() + reader.records().count();
            return Err(ImportError::TooManyRows {
                max: max_rows,
                found,
            });
        }
    }
    Ok(rows)
}

/// What makes a spreadsheet read a cell as a formula when it starts with it.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell that a spreadsheet will not run as a formula: text starting with = + - @ (or a
/// tab or return) gets a leading apostrophe, as OWASP recommends against CSV injection.
/// So does every part after a `;` or `,`: a spreadsheet that splits on the other
/// separator than the one we use (Excel in many locales splits on `;`), or ignores
/// quotes, would make each part a cell of its own ("Ada;=HYPERLINK(...)").
pub fn safe_cell(value: &str) -> Cow<'_, str> {
    // Spreadsheets skip leading spaces before a formula.
    let risky = |field: &str| field.trim_start_matches(' ').starts_with(FORMULA_START);
    if !value.split([';', ',']).any(risky) {
        return Cow::Borrowed(value);
    }
    let mut safe = String::with_capacity(value.len() + 2);
    let mut field_starts = true;
    for (at, c) in value.char_indices() {
        if field_starts && risky(&value[at..]) {
            safe.push('\'');
        }
        field_starts = matches!(c, ';' | ',');
        safe.push(c);
    }
    Cow::Owned(safe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(first: &str, last: &str, email: &str) -> ImportedRow {
        ImportedRow {
            first_name: first.into(),
            last_name: last.into(),
            email: email.into(),
        }
    }

    #[test]
    fn reads_commas_semicolons_quotes_and_a_bom() {
        let comma = "\u{feff}First name,Last name,Email address\nAda,Lovelace,ada@example.com\n\n\"O'Brien, Jr\",Bob,bob@example.com\n";
        assert_eq!(
            parse(comma.as_bytes(), 10).unwrap(),
            vec![
                row("Ada", "Lovelace", "ada@example.com"),
                row("O'Brien, Jr", "Bob", "bob@example.com")
            ]
        );
        let semicolon = "email;surname;given name\r\n ada@example.com ; Lovelace ; Ada \r\n";
        assert_eq!(
            parse(semicolon.as_bytes(), 10).unwrap(),
            vec![row("Ada", "Lovelace", "ada@example.com")]
        );
    }

    #[test]
    fn says_what_is_wrong_with_a_file() {
        assert_eq!(parse(b"", 10), Err(ImportError::Empty));
        assert_eq!(parse(b"\xff\xfe\x00a", 10), Err(ImportError::NotUtf8));
        assert!(matches!(
            parse(b"name,mail\nAda,ada@example.com", 10),
            Err(ImportError::MissingColumns(columns)) if columns == "First name column and Last name column"
        ));
        let many = format!("first,last,email\n{}", "a,b,c@example.com\n".repeat(12));
        assert_eq!(
            parse(many.as_bytes(), 10),
            Err(ImportError::TooManyRows { max: 10, found: 12 })
        );
    }

    #[test]
    fn formulas_are_defused() {
        assert_eq!(safe_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(safe_cell("-1+2"), "'-1+2");
        assert_eq!(safe_cell("Ada"), "Ada");
        assert_eq!(safe_cell("Jean-Luc; Ann, Bo"), "Jean-Luc; Ann, Bo");
        assert_eq!(safe_cell("Ada;=HYPERLINK(\"x\")"), "Ada;'=HYPERLINK(\"x\")");
        assert_eq!(safe_cell("a, @SUM(1);+1"), "a,' @SUM(1);'+1");
        assert_eq!(safe_cell("x;\t=1"), "x;'\t=1");
        assert_eq!(safe_cell(""), "");
    }
}
