//! A large file (thousands of `[[integration]]` tables) is parsed in parts on several threads and the parts
//! joined: toml's parse is most of a load, and a load stands between a console's start and its first frame.
//!
//! Each part after the first starts at a line that begins with `[[` and is padded with spaces to its offset, so
//! toml's spans are offsets in the whole file. The parts stand in for the whole document only when every part
//! parses cleanly and they join without touching: a part that starts inside a multi-line string or array leaves
//! the part before it unterminated (an error), and a later part can differ from the whole file's reading only
//! through a top-level key that an earlier part also has (`[credential.x]` meaning the last credential before it,
//! a table defined twice, `[[x]]` after `x = [...]`); the only such key joined is an array of tables in both.
//! Anything else returns None and the caller parses the file whole, so errors read exactly as they always did.

use serde_spanned::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

/// Below this much text per part, one thread parses sooner than it can start another.
const MIN_PART_BYTES: usize = 128 * 1024;
const MAX_PARTS: usize = 4;

/// How many parts a text of `len` bytes is worth on this machine (1: parse it whole).
pub(crate) fn parts_for(len: usize) -> usize {
    (len / MIN_PART_BYTES).clamp(1, crate::halves::cores().min(MAX_PARTS))
}

/// Where the parts after the first start: at most `parts - 1` offsets, increasing, each at a line beginning
/// with `[[`. Empty when there is no such line to cut at.
pub(crate) fn cut_points(text: &str, parts: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = Vec::new();
    for i in 1..parts {
        let from = (text.len() / parts)
            .saturating_mul(i)
            .max(cuts.last().map_or(0, |c| c + 1));
        // Byte search: `\n` and `[` are ASCII, so an offset after `\n` is a char boundary.
        let Some(found) = text
            .as_bytes()
            .get(from..)
            .and_then(|rest| find(rest, b"\n[["))
        else {
            break;
        };
        cuts.push(from + found + 1);
    }
    cuts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The parts after the first, each `text[cut..next cut]` behind `cut` spaces.
pub(crate) fn padded_parts(text: &str, cuts: &[usize]) -> Vec<String> {
    cuts.iter()
        .enumerate()
        .map(|(i, &start)| {
            let end = cuts.get(i + 1).copied().unwrap_or(text.len());
            let mut part = String::with_capacity(end);
            part.extend(std::iter::repeat_n(' ', start));
            part.push_str(&text[start..end]);
            part
        })
        .collect()
}

/// The document from its parts (`text` up to the first cut, then `padded`), parsed at once; None when a part
/// has an error or the parts don't join as the whole file would read (see the module's comment).
pub(crate) fn parse<'i>(
    text: &'i str,
    cuts: &[usize],
    padded: &'i [String],
) -> Option<Spanned<DeTable<'i>>> {
    let first_end = *cuts.first()?;
    let (first, rest) = std::thread::scope(|scope| {
        let threads: Vec<_> = padded
            .iter()
            .map(|part| {
                std::thread::Builder::new()
                    .name("config-parse".into())
                    .spawn_scoped(scope, move || clean(part))
            })
            .collect();
        let first = clean(&text[..first_end]);
        let rest: Vec<Option<DeTable<'i>>> = threads
            .into_iter()
            .zip(padded)
            // A thread that could not start: its part is parsed here.
            .map(|(thread, part)| match thread {
                Ok(t) => t.join().ok().flatten(),
                Err(_) => clean(part),
            })
            .collect();
        (first, rest)
    });
    let mut root = first?;
    for part in rest {
        if !join(text, &mut root, part?) {
            return None;
        }
    }
    Some(Spanned::new(0..text.len(), root))
}

fn clean(part: &str) -> Option<DeTable<'_>> {
    let (doc, errors) = DeTable::parse_recoverable(part);
    errors.is_empty().then(|| doc.into_inner())
}

/// Add `part`'s top-level keys to `root`; false when a key is in both and is not an array of tables in both.
fn join<'i>(text: &str, root: &mut DeTable<'i>, part: DeTable<'i>) -> bool {
    for (key, value) in part {
        let Some(existing) = root.get_mut(key.get_ref().as_ref()) else {
            root.insert(key, value);
            continue;
        };
        let (DeValue::Array(have), DeValue::Array(more)) = (existing.get_mut(), value.get_ref())
        else {
            return false;
        };
        if !array_of_tables(text, have) || !array_of_tables(text, more) {
            return false;
        }
        let DeValue::Array(more) = value.into_inner() else {
            return false;
        };
        for table in more {
            have.push(table);
        }
    }
    true
}

/// An array made by `[[key]]` headers: each element is a table whose span is its header. (An inline array of
/// inline tables has elements spanning `{ ... }`.)
fn array_of_tables(text: &str, array: &DeArray<'_>) -> bool {
    !array.is_empty()
        && array.iter().all(|item| {
            matches!(item.get_ref(), DeValue::Table(_))
                && text
                    .get(item.span())
                    .is_some_and(|header| header.starts_with("[["))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts' document cut at `cuts`, or None.
    fn at(text: &str, cuts: &[usize]) -> Option<String> {
        let padded = padded_parts(text, cuts);
        parse(text, cuts, &padded).map(|doc| shape(text, &doc))
    }

    /// The parts' document in `parts` pieces, whatever the text's size.
    fn in_parts(text: &str, parts: usize) -> Option<String> {
        let cuts = cut_points(text, parts);
        assert!(!cuts.is_empty(), "no cut in {text:?}");
        at(text, &cuts)
    }

    /// Every place the text could be cut (each line beginning with `[[`).
    fn every_cut(text: &str) -> Vec<usize> {
        (1..text.len())
            .filter(|&i| text[..i].ends_with('\n') && text[i..].starts_with("[["))
            .collect()
    }

    /// Cut anywhere, once or twice: the parts give the whole file's document or nothing.
    fn never_differs(text: &str) {
        let cuts = every_cut(text);
        let want = whole(text);
        for (i, &a) in cuts.iter().enumerate() {
            for cut in std::iter::once(vec![a]).chain(cuts[i + 1..].iter().map(|&b| vec![a, b])) {
                let got = at(text, &cut);
                assert!(got.is_none() || got == want, "cut at {cut:?} of {text}");
            }
        }
    }

    /// The whole file's document, or None when it has errors.
    fn whole(text: &str) -> Option<String> {
        let (doc, errors) = DeTable::parse_recoverable(text);
        errors.is_empty().then(|| shape(text, &doc))
    }

    /// Every key and value with the text its span covers: equal shapes mean equal documents and equal spans.
    fn shape(text: &str, doc: &Spanned<DeTable<'_>>) -> String {
        fn walk(text: &str, value: &Spanned<DeValue<'_>>, out: &mut String) {
            let at = &text[value.span()];
            match value.get_ref() {
                DeValue::Table(t) => {
                    out.push_str(&format!("{{@{at:?}"));
                    for (k, v) in t.iter() {
                        out.push_str(&format!(" {:?}@{:?}=", k.get_ref(), &text[k.span()]));
                        walk(text, v, out);
                    }
                    out.push('}');
                }
                DeValue::Array(a) => {
                    out.push_str(&format!("[@{at:?}"));
                    for v in a.iter() {
                        walk(text, v, out);
                        out.push(',');
                    }
                    out.push(']');
                }
                other => out.push_str(&format!("{other:?}@{at:?}")),
            }
        }
        let mut out = String::new();
        let root = Spanned::new(0..text.len(), DeValue::Table(doc.get_ref().clone()));
        walk(text, &root, &mut out);
        out
    }

    fn integrations(n: usize) -> String {
        let mut text = String::from(
            "[settings]\nname = \"x\"\n\n[[credential]]\nid = \"c\"\nclient_id = \"a\"\n",
        );
        for i in 0..n {
            text.push_str(&format!(
                "\n[[integration]]\nname = \"int-{i}\"\ncredential = \"c\"\nscopes = [\"a\", \"b\"]\n"
            ));
        }
        text
    }

    #[test]
    fn a_file_of_many_tables_reads_the_same_in_parts_as_whole_with_the_same_spans() {
        let text = integrations(40);
        for parts in 2..=4 {
            let cuts = cut_points(&text, parts);
            assert_eq!(cuts.len(), parts - 1);
            assert!(
                cuts.iter()
                    .all(|&c| text[c..].starts_with("[[integration]]"))
            );
            assert_eq!(in_parts(&text, parts), whole(&text), "{parts} parts");
        }
        // Credentials and integrations interleaved, cut inside either run.
        let mixed = integrations(10).replace(
            "\n[[integration]]\nname = \"int-5\"",
            "\n[[credential]]\nid = \"d\"\n\n[[integration]]\nname = \"int-5\"",
        );
        for parts in 2..=4 {
            assert_eq!(in_parts(&mixed, parts), whole(&mixed), "{parts} parts");
        }
        never_differs(&mixed);
    }

    #[test]
    fn parts_that_would_read_differently_from_the_whole_file_are_refused() {
        let tail = "\n[[integration]]\nname = \"b\"\n";
        let cases = [
            // A sub-table of the last credential, which the whole file puts in the first part's credential.
            "[[credential]]\nid = \"c\"\n\n[[integration]]\nname = \"a\"\n[credential.extra]\nx = 1\n",
            // A table defined in both parts (an error in the whole file).
            "[settings]\nname = \"x\"\n\n[[integration]]\nname = \"a\"\n[settings]\nname = \"y\"\n",
            // `[[integration]]` after an inline array of the same name (an error in the whole file).
            "integration = [{ name = \"a\" }]\n\n[[integration]]\nname = \"a\"\n",
            // A cut inside a multi-line string: the first part is left unterminated.
            "[settings]\nname = \"\"\"\n[[integration]]\nname = \"a\"\n\"\"\"\n\n[[integration]]\nname = \"a\"\n",
            // A cut inside a multi-line array.
            "[settings]\nname = [\n[[\"a\"]],\n]\n[[integration]]\nname = \"a\"\n",
        ];
        for case in cases {
            let text = format!("{case}{tail}");
            // Cut at the first `[[` line: inside the string or array, or before the part that reads differently.
            let first = every_cut(&text)[0];
            assert_eq!(at(&text, &[first]), None, "{text}");
            never_differs(&text);
        }
        // A syntax error in one part: the caller parses the whole file for the error.
        assert_eq!(
            in_parts(&integrations(4).replace("int-3\"", "int-3"), 2),
            None
        );
    }

    #[test]
    fn a_small_file_or_one_without_array_headers_is_parsed_whole() {
        assert_eq!(parts_for(1000), 1);
        assert!(cut_points("[settings]\nname = \"x\"\n", 2).is_empty());
        assert!(parse("[settings]\n", &[], &[]).is_none());
    }
}
