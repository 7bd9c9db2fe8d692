//! The `unattended` command: the runner with the workspace's engines.

fn main() -> std::process::ExitCode {
    unattended_cli::main(unattended::engines())
}
