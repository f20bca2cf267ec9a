//! A Python that has what a test needs from PyPI: `$ICP_PYTHON` when it already has it (`.ci/run`
//! installs every pinned requirement there), else a virtual environment made once under the
//! target directory, so `cargo test` alone sets up what it needs. A Python that cannot get it
//! fails the test that asked, never skips it.

use std::path::Path;
use std::process::Command;

/// What a test needs: a module to import, the pinned requirements that provide it, and the
/// environment to make when `$ICP_PYTHON` lacks it.
pub struct PythonNeed<'a> {
    /// Python code that succeeds only when the need is met (an import, usually).
    pub probe: &'a str,
    pub requirements: &'a Path,
    /// The directory name of the fallback environment under the target directory.
    pub venv: &'a str,
}

impl PythonNeed<'_> {
    fn met_by(&self, python: &str) -> bool {
        Command::new(python)
            .args(["-c", self.probe])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// The path of a Python that meets the need; panics, saying how to install it, when none can.
    pub fn python(&self) -> String {
        if let Ok(python) = std::env::var("ICP_PYTHON")
            && self.met_by(&python)
        {
            return python;
        }
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(self.venv);
        let python = venv.join("bin/python").display().to_string();
        if !self.met_by(&python) {
            let base = std::env::var("ICP_PYTHON").unwrap_or_else(|_| "python3".to_owned());
            run(Command::new(&base).args(["-m", "venv"]).arg(&venv));
            run(Command::new(&python)
                .args(["-m", "pip", "install", "--quiet"])
                .args(["--disable-pip-version-check", "-r"])
                .arg(self.requirements));
        }
        assert!(
            self.met_by(&python),
            "{python} still fails `{}` after installing {}: `python3 -m pip install -r {0}` \
             and set ICP_PYTHON to that python",
            self.probe,
            self.requirements.display()
        );
        python
    }
}

/// Runs a set-up command, failing the test with its output when it fails.
fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
