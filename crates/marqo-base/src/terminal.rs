//! Asking the user on the terminal: passphrases, without echo.

use ops::sign::Prompt;
use zeroize::Zeroizing;

/// Asks for passphrases on the terminal (`/dev/tty`), without echo.
pub struct TerminalPrompt;

impl Prompt for TerminalPrompt {
    fn passphrase(&self, prompt: &str) -> Result<Zeroizing<String>, ops::Error> {
        rpassword::prompt_password(prompt).map(Zeroizing::new).map_err(|e| {
            ops::Error::from_error("cannot ask for the key's passphrase: there is no terminal", e).with_hint(
                format!(
                    "set {} to the passphrase (in CI, from a secret)",
                    env_vars::EnvVars::MARQO_BASE_KEY_PASSWORD
                ),
            )
        })
    }
}
