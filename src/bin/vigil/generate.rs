//! `vigil generate` (hidden): the man pages and shell completions, generated from the
//! command-line definitions themselves, so the packages ship documentation that cannot drift
//! from the commands. Run by scripts/package.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{CommandFactory, Subcommand};
use clap_complete::Shell;

#[derive(Subcommand)]
pub enum GenerateCommand {
    /// Write the man pages to DIR: vigil.1 and one page per subcommand (vigil-audit-list.1, ...).
    Man {
        /// The folder to write them to (created if missing).
        dir: PathBuf,
    },
    /// Write the completion script for SHELL to DIR (vigil.bash, _vigil, vigil.fish, ...).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: Shell,
        /// The folder to write it to (created if missing).
        dir: PathBuf,
    },
}

pub fn run(command: GenerateCommand) -> Result<ExitCode> {
    match command {
        GenerateCommand::Man { dir } => {
            create_dir(&dir)?;
            clap_mangen::generate_to(crate::Cli::command(), &dir)
                .with_context(|| format!("cannot write the man pages to {}", dir.display()))?;
            println!("{}", dir.join("vigil.1").display());
        }
        GenerateCommand::Completions { shell, dir } => {
            create_dir(&dir)?;
            let path = clap_complete::generate_to(shell, &mut crate::Cli::command(), "vigil", &dir)
                .with_context(|| {
                    format!("cannot write the {shell} completions to {}", dir.display())
                })?;
            println!("{}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}
