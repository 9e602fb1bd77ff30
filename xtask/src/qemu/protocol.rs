//! The text of the headless console protocol, pure: the line typed into the guest shell, the
//! markers a boot's token makes, what a console line means, the host's stdin as a
//! here-document, and console bytes split into lines (long ones in pieces).

use anyhow::{Result, bail};
use std::time::Instant;

/// The longest console line kept whole; a longer one is passed on in pieces of about this size.
pub const MAX_LINE: usize = 64 * 1024;
/// The most the host's standard input may hold for the guest command.
pub const MAX_STDIN: usize = 1 << 20;
/// The guest tty's line buffer (N_TTY_BUF_SIZE, less the newline).
const MAX_STDIN_LINE: usize = 4095;

/// Console text as it arrives: a whole line, or a piece of one too long to keep whole.
#[derive(Debug, PartialEq)]
pub struct Text {
    pub text: String,
    /// It ended in a newline (which `text` does not hold).
    pub whole: bool,
}

/// What a console line means to us.
#[derive(Debug, PartialEq)]
pub enum Marker {
    BootTook(f64),
    Panic,
    /// The guest halted or powered off (`poweroff -f`): qemu does not end by itself.
    Halted,
    Begin,
    /// The command's exit status, and output printed before the marker without a newline.
    End(i32, String),
}

/// Markers of the boot with `token`, as the guest prints them.
fn begin(token: &str) -> String {
    format!("TEENY_BEGIN_{token}")
}

fn end(token: &str) -> String {
    format!("TEENY_END_{token}:")
}

/// What `line` means, for the boot with `token`.
pub fn marker(line: &str, token: &str) -> Option<Marker> {
    if let Some(rest) = line.trim().strip_prefix("Boot took ") {
        return rest.strip_suffix(" seconds")?.trim().parse().ok().map(Marker::BootTook);
    }
    // The kernel's own lines, with or without a printk timestamp.
    let kernel = line.trim().strip_prefix('[').and_then(|l| l.split_once("] ")).map_or(line.trim(), |(_, l)| l);
    if kernel.starts_with("Kernel panic - not syncing") {
        return Some(Marker::Panic);
    }
    // 6.1: "reboot: System halted" or "reboot: Power down"; 6.12 on a PC without ACPI:
    // "reboot: Power off not available: System halted instead".
    if kernel.strip_prefix("reboot: ").is_some_and(|r| r.contains("System halted") || r.starts_with("Power down")) {
        return Some(Marker::Halted);
    }
    if line.trim() == begin(token) {
        return Some(Marker::Begin);
    }
    let (before, code) = line.rsplit_once(&end(token))?;
    code.trim().parse().ok().map(|c| Marker::End(c, before.to_owned()))
}

/// A marker as typed: quotes in the middle, so the tty's echo of our input never matches.
fn typed(marker: &str) -> String {
    format!("{}''{}", &marker[..5], &marker[5..])
}

fn quote(a: &str) -> String {
    format!("'{}'", a.replace('\'', r"'\''"))
}

/// The line typed into the guest shell: the command between the markers, in a shell of its own
/// so that an `exit` ends the command and not the console. A single argument is a command line
/// (`sh -c`, as `ssh host 'cmd'` runs it); several are words passed as they are. Its standard
/// input is `stdin` as a here-document, or /dev/null.
pub fn command_line(argv: &[String], token: &str, stdin: Option<&str>) -> String {
    let command = match argv {
        [line] => format!("sh -c {}", quote(line)),
        words => format!("sh -c '\"$@\"' sh {}", words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")),
    };
    let (redirect, document) = match stdin {
        None => ("</dev/null".to_owned(), String::new()),
        Some(text) => {
            let eof = format!("TEENY_EOF_{token}");
            let body = if text.is_empty() || text.ends_with('\n') { text.to_owned() } else { format!("{text}\n") };
            (format!("<<'{eof}'"), format!("{body}{eof}\n"))
        }
    };
    format!("echo {}; {command} {redirect}; echo {}$?\n{document}", typed(&begin(token)), typed(&end(token)))
}

/// Checks the host's standard input can pass through the guest's tty as it is: text lines, each
/// within the tty's line buffer, without the bytes the tty acts on (Ctrl-C, Ctrl-D, erase, …).
pub fn check_stdin(bytes: &[u8]) -> Result<&str> {
    anyhow::ensure!(
        bytes.len() <= MAX_STDIN,
        "the guest command's standard input holds {} bytes; at most {MAX_STDIN} pass through the console",
        bytes.len()
    );
    let text = std::str::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!("the guest command's standard input is not UTF-8 text (at byte {})", e.valid_up_to())
    })?;
    if let Some(at) = bytes.iter().position(|&b| (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f) {
        bail!(
            "the guest command's standard input has the control byte {:#04x} at byte {at}: only text passes through the guest's tty (share a file with --share instead)",
            bytes[at]
        );
    }
    if let Some((n, line)) = text.lines().enumerate().find(|(_, l)| l.len() > MAX_STDIN_LINE) {
        bail!(
            "line {} of the guest command's standard input has {} bytes; the guest's tty takes at most {MAX_STDIN_LINE}",
            n + 1,
            line.len()
        );
    }
    Ok(text)
}

/// A shell prompt: the console's last partial line ends in `# ` or `$ `.
pub fn is_prompt(partial: &[u8]) -> bool {
    partial.ends_with(b"# ") || partial.ends_with(b"$ ")
}

/// A new token for one boot's markers: 16 hex digits from the kernel's random source.
pub fn new_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_err() {
        let seed = format!("{:?} {}", Instant::now(), std::process::id());
        return crate::ctx::sha256_hex(&[seed.as_bytes()])[..16].to_owned();
    }
    crate::ctx::hex(&bytes)
}

/// Splits what arrived into whole lines and, past [`MAX_LINE`], a piece of the unfinished one.
/// `scanned` bytes of `partial` are known to hold no newline; each byte is looked at once.
pub fn split(partial: &mut Vec<u8>, scanned: &mut usize) -> Vec<Text> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in *scanned..partial.len() {
        if partial[i] == b'\n' {
            let raw = &partial[start..i];
            let text = String::from_utf8_lossy(raw).trim_end_matches('\r').to_owned();
            out.push(Text { text, whole: true });
            start = i + 1;
        }
    }
    partial.drain(..start);
    // Keep the end: a marker is never cut, nor a UTF-8 character.
    let keep = 128;
    if partial.len() > MAX_LINE {
        let mut cut = partial.len() - keep;
        while cut > 0 && (partial[cut] & 0xc0) == 0x80 {
            cut -= 1;
        }
        let piece: Vec<u8> = partial.drain(..cut).collect();
        out.push(Text { text: String::from_utf8_lossy(&piece).into_owned(), whole: false });
    }
    *scanned = partial.len();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef";

    #[test]
    fn parses_console_markers() {
        assert_eq!(marker("Boot took 0.28 seconds", TOKEN), Some(Marker::BootTook(0.28)));
        let panic = "[    1.2] Kernel panic - not syncing: No working init found.";
        assert_eq!(marker(panic, TOKEN), Some(Marker::Panic));
        assert_eq!(marker("Kernel panic - not syncing: Attempted to kill init!", TOKEN), Some(Marker::Panic));
        assert_eq!(marker("reboot: System halted", TOKEN), Some(Marker::Halted));
        assert_eq!(marker("[   12.5] reboot: Power down", TOKEN), Some(Marker::Halted));
        let instead = "reboot: Power off not available: System halted instead";
        assert_eq!(marker(instead, TOKEN), Some(Marker::Halted));
        assert_eq!(marker("reboot: Restarting system", TOKEN), None, "qemu ends by itself (-no-reboot)");
        assert_eq!(marker(&format!("TEENY_BEGIN_{TOKEN}"), TOKEN), Some(Marker::Begin));
        assert_eq!(marker(&format!("TEENY_END_{TOKEN}:7"), TOKEN), Some(Marker::End(7, String::new())));
        assert_eq!(marker(&format!("no newlineTEENY_END_{TOKEN}:0"), TOKEN), Some(Marker::End(0, "no newline".into())));
        assert_eq!(marker("Boot took a while", TOKEN), None);
    }

    #[test]
    fn output_cannot_forge_the_status_or_a_panic() {
        // Another boot's markers, or the old fixed ones, are the command's output.
        for line in
            ["TEENY_END:7", "TEENY_END_ffffffffffffffff:7", "TEENY_BEGIN", "~ # echo Kernel panic - not syncing"]
        {
            assert_eq!(marker(line, TOKEN), None, "{line}");
        }
        // The tty echoes what we type: that echo must not count as a marker.
        for echoed in command_line(&["true".into()], TOKEN, Some("TEENY_END_x:1\n")).lines() {
            assert_eq!(marker(&format!("~ # {echoed}"), TOKEN), None, "{echoed}");
            assert_eq!(marker(echoed, TOKEN), None, "{echoed}");
        }
    }

    #[test]
    fn guest_command_quotes_every_word_and_exit_ends_only_the_command() {
        let line = command_line(&["exit".into(), "3".into(), "it's".into()], TOKEN, None);
        let expected = format!(
            "echo TEENY''_BEGIN_{TOKEN}; sh -c '\"$@\"' sh 'exit' '3' 'it'\\''s' </dev/null; echo TEENY''_END_{TOKEN}:$?\n"
        );
        assert_eq!(line, expected);
    }

    #[test]
    fn a_single_argument_is_a_shell_command_line() {
        let line = command_line(&["dmesg | head -3; exit 3".into()], TOKEN, None);
        assert!(line.contains("; sh -c 'dmesg | head -3; exit 3' </dev/null; "), "{line}");
        assert!(command_line(&["it's".into()], TOKEN, None).contains(r"sh -c 'it'\''s' "));
    }

    #[test]
    fn stdin_is_a_here_document_ending_in_a_newline() {
        let line = command_line(&["cat".into()], TOKEN, Some("a\nb"));
        assert!(
            line.ends_with(&format!(
                "sh -c 'cat' <<'TEENY_EOF_{TOKEN}'; echo TEENY''_END_{TOKEN}:$?\na\nb\nTEENY_EOF_{TOKEN}\n"
            )),
            "{line}"
        );
        let empty = command_line(&["cat".into()], TOKEN, Some(""));
        assert!(empty.ends_with(&format!(":$?\nTEENY_EOF_{TOKEN}\n")), "{empty}");
    }

    #[test]
    fn stdin_must_be_text_the_tty_passes() {
        assert_eq!(check_stdin(b"a\tb\nc\n").unwrap(), "a\tb\nc\n");
        let err = check_stdin(b"a\x03b").unwrap_err().to_string();
        assert!(err.contains("control byte 0x03 at byte 1"), "{err}");
        assert!(check_stdin(b"\x7f").is_err());
        assert!(check_stdin(b"\r\n").is_err());
        assert!(check_stdin(&[0xff, 0xfe]).unwrap_err().to_string().contains("not UTF-8"));
        let long = "x".repeat(MAX_STDIN_LINE + 1);
        assert!(check_stdin(long.as_bytes()).unwrap_err().to_string().contains("line 1 of"));
        assert!(check_stdin(&vec![b'x'; MAX_STDIN + 1]).unwrap_err().to_string().contains("at most"));
    }

    #[test]
    fn a_line_without_end_is_passed_on_in_pieces_and_each_byte_is_scanned_once() {
        let (mut partial, mut scanned) = (Vec::new(), 0);
        let mut pieces = 0;
        let mut total = 0;
        for _ in 0..1000 {
            partial.extend([b'x'; 4096]);
            for t in split(&mut partial, &mut scanned) {
                assert!(!t.whole);
                total += t.text.len();
                pieces += 1;
            }
            assert!(partial.len() <= MAX_LINE + 4096, "{}", partial.len());
            assert_eq!(scanned, partial.len());
        }
        assert!(pieces > 10, "{pieces}");
        assert_eq!(total + partial.len(), 4096 * 1000, "no byte lost");
        partial.extend(b"yz\nnext");
        let texts = split(&mut partial, &mut scanned);
        assert!(texts.last().unwrap().whole && texts.last().unwrap().text.ends_with("yz"));
        assert_eq!(partial, b"next");
    }

    #[test]
    fn a_piece_never_cuts_a_utf8_character() {
        let (mut partial, mut scanned) = (Vec::new(), 0);
        partial.extend("é".repeat(MAX_LINE).as_bytes());
        let texts = split(&mut partial, &mut scanned);
        assert!(!texts[0].text.contains('\u{fffd}'));
        assert!(std::str::from_utf8(&partial).is_ok());
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(new_token(), new_token());
        assert_eq!(new_token().len(), 16);
    }

    #[test]
    fn prompts() {
        assert!(is_prompt(b"~ # "));
        assert!(is_prompt(b"/ $ "));
        assert!(!is_prompt(b"Boot took"));
    }
}
