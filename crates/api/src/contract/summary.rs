//! The one-line `summary` from a doc comment's first sentence, the rest kept as `description`:
//! generated clients and documentation viewers show the summary alone.

/// The longest summary the document keeps (a test holds every operation to it).
pub const SUMMARY_MAX: usize = 120;
/// A first sentence longer than this is cut to its first clause for the summary.
const SUMMARY_SOFT_MAX: usize = 90;

/// Where the first sentence of `text` ends (the index after its full stop), if it ends before
/// the text does: a full stop followed by white space, outside parentheses, brackets and code,
/// and not that of an abbreviation.
fn first_sentence_end(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut code = false;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        match c {
            '`' => code = !code,
            '(' | '[' | '{' if !code => depth += 1,
            ')' | ']' | '}' if !code => depth = depth.saturating_sub(1),
            '?' if !code && depth == 0 && bytes.get(i + 1).is_some_and(u8::is_ascii_whitespace) => {
                return Some(i + 1);
            }
            '.' if !code && depth == 0 => {
                let followed_by_space = bytes.get(i + 1).is_some_and(u8::is_ascii_whitespace);
                let word = text[..i]
                    .rsplit(|c: char| c.is_whitespace() || c == '(')
                    .next()
                    .unwrap_or("");
                let abbreviation = matches!(word, "e.g" | "i.e" | "etc" | "cf" | "vs" | "approx" | "No" | "Art");
                if followed_by_space && !abbreviation {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Where the first clause of `text` ends: before a `:`, `;` or ` — ` outside parentheses and code.
fn first_clause_end(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut code = false;
    for (i, c) in text.char_indices() {
        match c {
            '`' => code = !code,
            '(' | '[' | '{' if !code => depth += 1,
            ')' | ']' | '}' if !code => depth = depth.saturating_sub(1),
            ':' | ';' | '—' if !code && depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// A long first sentence as a summary: its first clause, without parentheses, and cut at a
/// word before [`SUMMARY_MAX`] if it is still too long.
fn shorten(sentence: &str) -> String {
    let clause = first_clause_end(sentence).map_or(sentence, |end| sentence[..end].trim_end());
    let mut short = without_parentheses(clause);
    if short.chars().count() > SUMMARY_MAX {
        let mut cut = String::new();
        for word in short.split(' ') {
            if cut.chars().count() + word.chars().count() + 1 > SUMMARY_MAX - 1 {
                break;
            }
            if !cut.is_empty() {
                cut.push(' ');
            }
            cut.push_str(word);
        }
        short = format!("{}…", cut.trim_end_matches([',', ';', ':']));
    }
    short
}

/// `text` without its parenthesised parts (outside code).
fn without_parentheses(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    let mut code = false;
    for c in text.chars() {
        match c {
            '`' if depth == 0 => {
                code = !code;
                out.push(c);
            }
            '(' if !code => depth += 1,
            ')' if !code && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    out.replace(" ,", ",")
        .replace(" ;", ";")
        .replace(" :", ":")
        .replace(" .", ".")
}

/// A one-line summary and the description that keeps the rest, from a doc comment's first
/// paragraph (which utoipa puts in `summary`) and its other paragraphs (`description`).
pub fn split_summary(summary: &str, description: Option<&str>) -> (String, Option<String>) {
    let text = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    let (first, rest) = match first_sentence_end(&text) {
        Some(end) => (text[..end].to_owned(), text[end..].trim().to_owned()),
        None => (text.clone(), String::new()),
    };
    let first = first.trim_end_matches('.').to_owned();
    // A first sentence too long for a summary is shortened; the description then keeps all of it.
    let (short, rest) = if first.chars().count() > SUMMARY_SOFT_MAX {
        (shorten(&first), summary.trim().to_owned())
    } else {
        // The rest keeps the comment's own line breaks (Markdown).
        let rest = if rest.is_empty() {
            String::new()
        } else {
            reflow_rest(summary.trim(), &rest)
        };
        (first, rest)
    };
    let description = [Some(rest.as_str()), description]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    (short, (!description.is_empty()).then_some(description))
}

/// The part of `original` (with its line breaks) that `rest` (with single spaces) is the end of.
fn reflow_rest(original: &str, rest: &str) -> String {
    let skip = original
        .split_whitespace()
        .count()
        .saturating_sub(rest.split_whitespace().count());
    let mut previous_is_space = true;
    let mut starts = original.char_indices().filter_map(|(i, c)| {
        let start = previous_is_space && !c.is_whitespace();
        previous_is_space = c.is_whitespace();
        start.then_some(i)
    });
    starts
        .nth(skip)
        .map_or_else(|| rest.to_owned(), |i| original[i..].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pl_1_summary_is_the_first_sentence_and_the_rest_is_the_description() {
        let (summary, description) = split_summary(
            "Lists the clients (newest first, e.g. `a.b`). Paged by `cursor`;\nsee docs/x.md.",
            Some("More."),
        );
        assert_eq!(summary, "Lists the clients (newest first, e.g. `a.b`)");
        assert_eq!(
            description.as_deref(),
            Some("Paged by `cursor`;\nsee docs/x.md.\n\nMore.")
        );
        let (summary, description) = split_summary("One line.", None);
        assert_eq!((summary.as_str(), description), ("One line", None));
        let long = format!("Pushes a batch ({}) in its own format. Then more.", "x ".repeat(80));
        let (summary, description) = split_summary(&long, None);
        assert_eq!(summary, "Pushes a batch in its own format");
        assert_eq!(description.as_deref(), Some(long.as_str()));
        let long = format!(
            "Close an account: it cannot log in {}. Then more.",
            "and so on ".repeat(10)
        );
        assert_eq!(split_summary(&long, None).0, "Close an account");
        let (summary, _) = split_summary("May X be disclosed to Q? `allow` or `deny`.", None);
        assert_eq!(summary, "May X be disclosed to Q?");
        let (summary, _) = split_summary(&"word ".repeat(60), None);
        assert!(
            summary.chars().count() <= SUMMARY_MAX && summary.ends_with('…'),
            "{summary}"
        );
    }
}
