//! Turning word-level tokens back into readable text.
//!
//! The word tokenizer splits punctuation into tokens of its own; joining with plain spaces
//! would print "to be , or not". These rules put the spaces back where English puts them.
//! The generated C decoder implements the same rules, so keep them simple and table-driven.

/// No space before these.
const CLOSERS: &[&str] = &[".", ",", ";", ":", "!", "?", ")", "]", "}", "%"];
/// No space after these.
const OPENERS: &[&str] = &["(", "[", "{", "$"];
/// Joined to both neighbours when they are both words ("don't", "well-known", "o'er").
const JOINERS: &[&str] = &["'", "-", "’"];

fn is_word(token: &str) -> bool {
    token.chars().next().is_some_and(char::is_alphanumeric)
}

/// Joins word-level tokens into text.
pub fn join_words<'a>(tokens: impl IntoIterator<Item = &'a str>) -> String {
    let tokens: Vec<&str> = tokens.into_iter().collect();
    let mut out = String::new();
    for (i, &token) in tokens.iter().enumerate() {
        if i > 0
            && needs_space(
                tokens[i - 1],
                token,
                tokens.get(i.wrapping_sub(2)).copied(),
                tokens.get(i + 1).copied(),
            )
        {
            out.push(' ');
        }
        out.push_str(token);
    }
    out
}

fn needs_space(prev: &str, token: &str, before_prev: Option<&str>, next: Option<&str>) -> bool {
    if CLOSERS.contains(&token) || OPENERS.contains(&prev) {
        return false;
    }
    let joins = |j: &str, left: Option<&str>, right: Option<&str>| {
        JOINERS.contains(&j) && left.is_some_and(is_word) && right.is_some_and(is_word)
    };
    !(joins(token, Some(prev), next) || joins(prev, before_prev, Some(token)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(s: &str) -> String {
        join_words(s.split(' '))
    }

    #[test]
    fn punctuation_rejoins_naturally() {
        assert_eq!(
            join("to be , or not to be : that is the question ."),
            "to be, or not to be: that is the question."
        );
        assert_eq!(
            join("i don ' t know ! ( really ) ?"),
            "i don't know! (really)?"
        );
        assert_eq!(join("a well - known man"), "a well-known man");
        assert_eq!(join("' tis"), "' tis");
        assert_eq!(join("first citizen :"), "first citizen:");
    }
}
