//! "Did you mean": the one nearest-name rule for every misspelt key, kind, id and name.

/// The candidate nearest to `input`, if close enough to be a plausible typo: at most 3 edits (a swap of two
/// neighbouring letters counts as one) and at most half the length of the longer word. Ties go to the first.
pub fn nearest<'c>(input: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let mut best: Option<(usize, &'c str)> = None;
    for c in candidates {
        let d = strsim::osa_distance(input, c);
        let longer = input.chars().count().max(c.chars().count());
        if d <= 3 && d * 2 <= longer && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn typos_find_their_word_and_strangers_find_nothing() {
        let kinds = ["env", "file", "command", "store"];
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("envv", &kinds, Some("env")),
            ("files", &kinds, Some("file")),
            ("comand", &kinds, Some("command")),
            ("vault", &kinds, None),
            ("x", &kinds, None),
            // A swapped pair is one edit, even in short words.
            ("pgk", &["pkg", "crm"], Some("pkg")),
            (
                "crm-snyc",
                &["crm-sync", "journey-events"],
                Some("crm-sync"),
            ),
            ("opertor", &["viewer", "operator"], Some("operator")),
            ("", &["env"], None),
            ("anything", &[], None),
        ];
        for (input, candidates, want) in cases {
            assert_eq!(
                nearest(input, candidates.iter().copied()),
                *want,
                "{input} among {candidates:?}"
            );
        }
    }

    #[test]
    fn the_closest_wins_and_ties_go_to_the_first() {
        assert_eq!(
            nearest("status_fild", ["status", "status_field"]),
            Some("status_field")
        );
        assert_eq!(nearest("ab", ["ac", "ad"]), Some("ac"));
    }
}
