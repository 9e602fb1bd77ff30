//! Words quoted for sh: to show a command as one would type it, and to write the `reproducer`
//! script beside a kernel's build record. A file for people to run: nothing here runs a shell.

/// One word as sh reads it back: as it is when sh takes every character of it literally, else
/// in single quotes, a quote in it written `'\''`.
pub fn quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_=./:,+@%".contains(c)) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Words quoted and joined by spaces: a command line for sh.
pub fn join(words: &[String]) -> String {
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_sh_would_change_is_quoted() {
        assert_eq!(quote("O=/b/obj/linux-x86-fast"), "O=/b/obj/linux-x86-fast");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        for special in ["$HOME", "`id`", "a;b", "~", "*", "#x", "a\nb", "\"", "!"] {
            assert_eq!(quote(special), format!("'{special}'"), "{special}");
        }
        assert_eq!(join(&["make".into(), "O=/a b".into(), "it's".into()]), r"make 'O=/a b' 'it'\''s'");
    }

    /// sh itself reads each quoted word back as the word.
    #[test]
    fn sh_reads_the_words_back() {
        let words: Vec<String> =
            ["plain", "a b", "it's", "$(id)", "'", "''\\'", "tab\there", "new\nline", "*"].map(String::from).into();
        let script = format!("for w in {}; do printf '%s\\0' \"$w\"; done", join(&words));
        let out = std::process::Command::new("sh").args(["-c", &script]).output().unwrap();
        let back: Vec<String> = out
            .stdout
            .split(|b| *b == 0)
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).into())
            .collect();
        assert_eq!(back, words);
    }
}
