//! Input: new passwords, values that must not sit in the process list, private files.

use std::io::IsTerminal;

use anyhow::{anyhow, bail, Result};

/// A new password from VIGIL_NEW_PASSWORD, or asked twice on a terminal.
pub(crate) fn new_password(prompt: &str) -> Result<zeroize::Zeroizing<String>> {
    if let Ok(p) = std::env::var("VIGIL_NEW_PASSWORD") {
        return Ok(zeroize::Zeroizing::new(p));
    }
    if !std::io::stdin().is_terminal() {
        bail!("set VIGIL_NEW_PASSWORD or run on a terminal to be asked for the new password");
    }
    let first = zeroize::Zeroizing::new(rpassword::prompt_password(prompt)?);
    let again = zeroize::Zeroizing::new(rpassword::prompt_password("Repeat it: ")?);
    if *first != *again {
        bail!("the passwords did not match; nothing was changed");
    }
    Ok(first)
}

/// The most a value read from standard input may be (one line; a code, an address or an email).
const MAX_INPUT_LINE: usize = 4096;

/// A value that should not sit in the process list (a code, an email, a phone number, an IP
/// address): the argument as given (scripts; visible to other local users while the command
/// runs), `-` for one line of standard input, or, left out, asked for without echo on a
/// terminal. Without a terminal, leaving it out is an error. Kept in a buffer wiped when dropped.
pub(crate) fn sensitive_value(
    given: Option<String>,
    what: &str,
) -> Result<zeroize::Zeroizing<String>> {
    match given {
        Some(v) if v != "-" => Ok(zeroize::Zeroizing::new(v)),
        given => {
            let value = if std::io::stdin().is_terminal() {
                zeroize::Zeroizing::new(rpassword::prompt_password(format!("{what}: "))?)
            } else if given.is_some() {
                read_stdin_line(what)?
            } else {
                bail!(
                    "no {what} given: pass it as `-` with one line on standard input, or run on \
                     a terminal to be asked for it"
                );
            };
            let trimmed = value.trim();
            if trimmed.is_empty() {
                bail!("no {what} given: the input was empty");
            }
            Ok(zeroize::Zeroizing::new(trimmed.to_owned()))
        }
    }
}

/// One line of standard input (without its line end), at most [`MAX_INPUT_LINE`] bytes, in a
/// buffer allocated once and wiped when dropped.
fn read_stdin_line(what: &str) -> Result<zeroize::Zeroizing<String>> {
    use std::io::Read;
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(MAX_INPUT_LINE + 1));
    let mut stdin = std::io::stdin().lock();
    let mut byte = [0u8; 1];
    while bytes.len() <= MAX_INPUT_LINE {
        match stdin.read(&mut byte)? {
            0 => break,
            _ if byte[0] == b'\n' => break,
            _ => bytes.push(byte[0]),
        }
    }
    zeroize::Zeroize::zeroize(&mut byte);
    if bytes.len() > MAX_INPUT_LINE {
        bail!("the {what} on standard input is longer than {MAX_INPUT_LINE} bytes");
    }
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow!("the {what} on standard input is not UTF-8"))?;
    Ok(zeroize::Zeroizing::new(text.to_owned()))
}

/// Writes `bytes` to a new file at `path` that only its owner can read (0600). Refuses to
/// overwrite an existing file or to follow a symbolic link, so a link planted in a shared
/// folder cannot redirect the write, and says which it was.
pub(crate) fn write_private_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use vigil::store::files;
    Ok(files::create_new(path, bytes, files::PRIVATE_FILE)?)
}
